// The custom reward processes answer `score` from the coordinator: the Python
// example (pyzmq + msgpack, Debian's /usr/bin/python3) and the shipped JS
// role (scoring in a piscina pool).
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { RewardClient } from '../../src/coordinator/reward-client.js';
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

// The example's scorer, written again here as the reference: the count of the letter in the answer.
function letters(answer: string, letter = 'e'): number {
  return answer.toLowerCase().split(letter).length - 1;
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
// What the coordinator decodes and sends beside the ids (docs/protocol.md).
const answers = ['eel free', 'Eerie', '', 'no', 'bee'];
const texts = { prompts: answers.map((_, i) => `Human: prompt ${i} Assistant:`), answers, eos: [true, false, false, true, true] };
const seqs = { ids: { dtype: 'i32' as const, shape: [B, T], data: ids }, mask: { dtype: 'i32' as const, shape: [B, T], data: mask } };

t.test('the Python reward process answers score', { skip: pythonMissing() }, async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({
    reward: { replicas: 2, devices: ['cpu:0', 'cpu:1'], command: [PY, join(repoRoot, 'examples/reward-python/reward.py')] },
  }, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());
  // Two replicas: each gets its own rows' texts (the reward client slices them with the tensors).
  const client = new RewardClient(rt, { decode: () => texts }, { retries: 0, backoffMs: 0 });
  const r = await client.score({ B, T, P, ids, mask });
  t.same([...r.scores], answers.map((a) => letters(a)), 'the letter counted in each answer');
  t.equal(r.figures['reward/mean_score'], answers.reduce((s, a) => s + letters(a), 0) / B, "the replies' metrics as reward/<key> (mean of the replicas')");
  t.ok((r.figures['reward/ms_per_sample'] as number) > 0, 'latency per sample');
  const one = await rt.role('reward', 1).call('score', { meta: { promptLength: P, ...texts }, tensors: seqs });
  t.same([...one.tensors.scores.data], answers.map((a) => letters(a)));
  t.match((await rt.role('reward', 1).call('stats')).meta, { language: 'python', role: 'reward', replica: 1 });
  await t.rejects(rt.role('reward', 0).call('generate'), { code: 'unknown_method' });
  await t.rejects(rt.role('reward', 0).call('score', { tensors: seqs }), { code: 'bad_message', message: /meta 'prompts', 'answers' and 'eos'/ });
  await t.rejects(rt.role('reward', 0).call('score', { meta: { ...texts, answers: ['x'] }, tensors: seqs }), { code: 'bad_message', message: /one entry per row/ });
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

t.test('a Python scorer that fails, then passes; one that hangs past the score deadline', { skip: pythonMissing() }, async (t) => {
  const runDir = tempRunDir(t);
  const flaky = join(repoRoot, 'test/fixtures/roles/reward_flaky.py');
  const events: string[] = [];
  const rt = await startRuntime({
    flaky: { replicas: 1, devices: ['cpu:0'], command: [PY, flaky, '--fail-first', '2'] },
    reward: { replicas: 1, devices: ['cpu:0'], command: [PY, flaky, '--sleep-once', '30'], cwd: runDir, restart: { maxRestarts: 1 } },
  }, { runDir, peerTimeoutMs: 60_000, deadlines: { score: 1500 }, onEvent: (e) => events.push(`${e.event} ${e.role} ${e.why ?? ''}`) });
  t.teardown(() => rt.shutdown());
  const want = answers.map((a) => letters(a, 'a'));

  // A retriable error twice, then the scores: the reward client sends the call again (reward.retries).
  const asFlaky = { roleNames: () => ['reward'], group: () => rt.group('flaky'), role: (_: string, i: number) => rt.role('flaky', i) };
  const ok = await new RewardClient(asFlaky, { decode: () => texts }, { retries: 2, backoffMs: 10 }).score({ B, T, P, ids, mask });
  t.same([...ok.scores], want);
  t.equal(ok.figures['reward/retries'], 2);
  const failing = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], command: [PY, flaky, '--fail-first', '5'] } }, { runDir: tempRunDir(t), peerTimeoutMs: 60_000 });
  t.teardown(() => failing.shutdown());
  await t.rejects(new RewardClient(failing, { decode: () => texts }, { retries: 1, backoffMs: 10 }).score({ B, T, P, ids, mask }, 3),
    /^reward\/0\.score at ppo step 3 failed after 2 attempts: method_failed: score_answer raised RuntimeError\('flaky scorer: call 2 fails'\)/);

  // Asleep past the deadline: restarted, the call sent again, and the new process (the marker is in its cwd, the run directory) answers.
  const slow = await new RewardClient(rt, { decode: () => texts }, { retries: 0, backoffMs: 0 }).score({ B, T, P, ids, mask });
  t.same([...slow.scores], want);
  t.match(events, [/role_down reward .*past its deadline of 1\.5 s/, /role_restored reward/]);
});
