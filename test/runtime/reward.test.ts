// The custom reward processes answer `score` from the coordinator: the Python
// example (pyzmq + msgpack, Debian's /usr/bin/python3) and the shipped JS
// role (scoring in a piscina pool).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { startRuntime } from '../../src/runtime/runtime.js';
import { distPath, repoRoot } from '../../src/util/paths.js';
import { processesMentioning, tempRunDir } from './helpers.js';

const PY = '/usr/bin/python3';

function pythonMissing(): string | false {
  try {
    execFileSync(PY, ['-c', 'import zmq, msgpack'], { stdio: 'pipe' });
    return false;
  } catch (e) {
    return `${PY} lacks zmq or msgpack (apt-get install python3-zmq python3-msgpack): ${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n').pop()}`;
  }
}

// The example's scorer, written again here as the reference: distinct / all answer tokens.
function distinctShare(tokens: number[]): number {
  return tokens.length ? new Set(tokens).size / tokens.length : 0;
}

// Prompts left-padded to P = 3, answers after them, pads (mask 0) at both ends.
const B = 5, T = 8, P = 3;
const ids = Int32Array.from([
  0, 7, 7, 1, 2, 3, 4, 0,
  7, 7, 7, 1, 1, 1, 1, 0,
  0, 0, 7, 0, 0, 0, 0, 0,
  7, 7, 7, 5, 5, 6, 6, 8,
  0, 7, 7, 2, 2, 2, 2, 2,
]);
const mask = Int32Array.from(ids, (x) => (x === 0 ? 0 : 1));

t.test('the Python reward process answers score', { skip: pythonMissing() }, async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({
    reward: { replicas: 2, devices: ['cpu:0', 'cpu:1'], command: [PY, join(repoRoot, 'examples/reward-python/reward.py')] },
  }, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());
  const r = await rt.group('reward').call('score', {
    meta: { promptLength: P },
    tensors: { ids: { dtype: 'i32', shape: [B, T], data: ids }, mask: { dtype: 'i32', shape: [B, T], data: mask } },
  });
  const expect = Array.from({ length: B }, (_, b) => distinctShare([...ids.subarray(b * T + P, (b + 1) * T)].filter((x) => x !== 0)));
  t.same(r.tensors.scores.shape, [B]);
  const got = [...r.tensors.scores.data as Float32Array];
  t.ok(got.every((v, i) => Math.abs(v - expect[i]) < 1e-6), `scores ${got} match the reference ${expect} within 1e-6 (f32)`);
  t.equal(r.replies.length, 2, 'both Python replicas served a slice');
  t.match((await rt.role('reward', 1).call('stats')).meta, { language: 'python', role: 'reward', replica: 1 });
  await t.rejects(rt.role('reward', 0).call('generate'), { code: 'unknown_method' });
  await t.rejects(rt.role('reward', 0).call('score', { tensors: { ids: { dtype: 'i32', shape: [1, 1], data: Int32Array.from([1]) } } }), { code: 'bad_message', message: /'ids' and 'mask'/ });
  await t.rejects(rt.role('reward', 0).call('score', { meta: { promptLength: 9 }, tensors: { ids: { dtype: 'i32', shape: [B, T], data: ids }, mask: { dtype: 'i32', shape: [B, T], data: mask } } }), { code: 'bad_message', message: /promptLength/ });
  await rt.shutdown();
  t.same(processesMentioning(runDir), []);
});

t.test('the JS reward process (piscina pool) answers score', async (t) => {
  const runDir = tempRunDir(t);
  const Sentiment = createRequire(import.meta.url)('sentiment') as new () => { analyze(s: string): { score: number } };
  const afinn = new Sentiment();
  const rt = await startRuntime({
    reward: { replicas: 1, devices: ['cpu:0-1'], module: 'actors/reward-js.js', args: { tokenizer: join(repoRoot, 'test/fixtures/roles/tokenizer.json') } },
    length: { replicas: 1, devices: ['cpu:1'], module: 'actors/reward-js.js', args: { scorer: distPath('test/fixtures/roles/scorer-length.js') } },
  }, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());

  const texts = ['i love this great day', 'i hate this awful day', 'a day', 'this is bad, not good', ''];
  const r = await rt.role('reward', 0).call('score', { meta: { texts } });
  t.same([...r.tensors.scores.data], texts.map((s) => afinn.analyze(s).score), 'AFINN scores as the sentiment package computes them');
  t.equal(r.metrics.mean_score, texts.reduce((a, s) => a + afinn.analyze(s).score, 0) / texts.length);
  t.match((await rt.role('reward', 0).call('stats')).meta, { pool_threads: 2, scorer: 'afinn' });

  // Token ids in, decoded with the role's tokenizer: the answer is what follows the prompt.
  // vocab: Human: 2, Assistant: 3, i 4, love 5, this 6, hate 7, great 8, awful 9, day 10, [PAD] 0
  // Prompts left-padded to 3 tokens; the answer is the real tokens after them.
  const tok = Int32Array.from([2, 4, 3, 4, 5, 8, 10, 0, 0, 2, 3, 7, 6, 9, 10, 0]);
  const byTokens = await rt.role('reward', 0).call('score', {
    meta: { promptLength: 3 },
    tensors: { ids: { dtype: 'i32', shape: [2, 8], data: tok }, mask: { dtype: 'i32', shape: [2, 8], data: Int32Array.from(tok, (x) => (x ? 1 : 0)) } },
  });
  t.same([...byTokens.tensors.scores.data], [afinn.analyze('i love great day').score, afinn.analyze('hate this awful day').score]);

  const custom = await rt.role('length', 0).call('score', { meta: { texts: ['one two three', 'x'] } });
  t.same([...custom.tensors.scores.data], [3, 1], 'a custom scorer module');
  await t.rejects(rt.role('length', 0).call('score', { tensors: {} }), { code: 'bad_message', message: /meta.texts/ });
  await rt.shutdown();
  t.same(processesMentioning(runDir), []);
});
