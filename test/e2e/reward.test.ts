// Custom rewards as users plug them in: `quartet ppo` from a random tiny
// policy against a scorer that reads text, the count of the letter 'o' in
// each answer, raises the mean reward by at least MARGIN (the mean of the
// last five steps against the first five) — with the Python example as a
// command reward (found beside its config file) and with an HTTP scorer this
// test serves. And the failures: a command reward without a critic model
// stops before any process starts naming critic.model; an HTTP scorer that
// answers 500 ends the run after its retries, naming the URL and the status.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { repoRoot } from '../../src/util/paths.js';
import { quartet } from './quartet.js';
import { makeTinyRun } from './tiny-run.js';

/** From about 0.2 'o's per answer at the start, 30 steps reach 5 and more; 3 leaves room for a slow machine's noise. */
const MARGIN = 3;
const PY = '/usr/bin/python3';

const config = {
  seed: 5,
  data: { maxPromptLen: 16, maxAnswerLen: 8, workers: 1 },
  actor: { devices: ['cpu:0'], threads: 1, lr: 3e-3, warmup: 0 },
  critic: { devices: ['cpu:1'], threads: 1, lr: 1e-3, warmup: 0 },
  reference: { devices: ['cpu:0'], threads: 1 },
  reward: { devices: ['cpu:1'], threads: 1 },
  ppo: { maxSteps: 30, epochs: 5, ppoEpochs: 2, promptBatchSize: 16, trainBatchSize: 16, maxNewTokens: 8, klCtl: 0.02 },
};

function pythonMissing(): string | false {
  try {
    execFileSync(PY, ['-c', 'import zmq, msgpack'], { stdio: 'pipe' });
    return false;
  } catch {
    return `${PY} lacks zmq or msgpack (apt-get install python3-zmq python3-msgpack)`;
  }
}

function rewards(runDir: string): number[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.phase === 'ppo' && r.event === undefined).map((r) => r.reward as number);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const dir = mkdtempSync(join(tmpdir(), 'q-e2e-reward-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const world = makeTinyRun(join(dir, 'world'), { rows: 400, seed: 5 });

async function ppo(t: Test, name: string, reward: Record<string, unknown>, extra: string[] = ['--critic.model', world.model]) {
  const cfgFile = join(dir, `${name}.json`);
  writeFileSync(cfgFile, JSON.stringify({ ...config, reward: { ...config.reward, ...reward } }));
  const out = join(dir, name);
  const r = await quartet(t, ['ppo', '--config', cfgFile, '--actor-model', world.model, '--data', world.data, '--output-dir', out, ...extra], { timeoutMs: 300_000 });
  return { ...r, out };
}

function raised(t: Test, out: string) {
  const r = rewards(out);
  t.equal(r.length, 30, 'thirty steps');
  const [first, last] = [mean(r.slice(0, 5)), mean(r.slice(-5))];
  t.ok(last - first >= MARGIN, `the mean reward rose by ${(last - first).toFixed(2)} >= ${MARGIN} (${first.toFixed(2)} -> ${last.toFixed(2)})`);
  const line = JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n')[0]) as Record<string, number>;
  t.ok(Math.abs(line['reward/mean_score'] - line.reward) < 1e-6, "the scorer's own metrics reach metrics.jsonl as reward/<key>");
  t.type(line['reward/ms_per_sample'], 'number');
}

t.test('a Python command reward that counts a letter in the text', { skip: pythonMissing() }, async (t) => {
  // The script sits beside the config, named relative to it; quartet starts elsewhere (the repository).
  copyFileSync(join(repoRoot, 'examples/reward-python/reward.py'), join(dir, 'reward.py'));
  const r = await ppo(t, 'python', { kind: 'command', command: [PY, 'reward.py', '--letter', 'o'] });
  t.equal(r.code, 0, r.code === 0 ? "quartet ppo exits 0" : `quartet ppo exits 0 (stderr tail: ${r.stderr.slice(-1500)})`);
  raised(t, r.out);
});

t.test('an HTTP reward that counts a letter in the text', async (t) => {
  let posts = 0;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      // The first POST fails: the role retries it.
      if (++posts === 1) { res.statusCode = 503; return res.end('warming up'); }
      const { answers } = JSON.parse(body) as { answers: string[] };
      res.end(JSON.stringify({ scores: answers.map((a) => a.split('o').length - 1) }));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/score`;
  const r = await ppo(t, 'http', { kind: 'http', url, http: { backoffMs: 10 } });
  t.equal(r.code, 0, r.code === 0 ? "quartet ppo exits 0" : `quartet ppo exits 0 (stderr tail: ${r.stderr.slice(-1500)})`);
  raised(t, r.out);
  t.ok(posts > 30, `${posts} POSTs`);
});

t.test('what stops a run with a custom reward, and what it says', async (t) => {
  const noCritic = await ppo(t, 'no-critic', { kind: 'command', command: [PY, 'reward.py'] }, []);
  t.not(noCritic.code, 0);
  t.match(noCritic.stderr, /critic\.model: reward\.kind is 'command', so the critic has no reward model to start from/);
  t.notOk(existsSync(join(noCritic.out, 'logs', 'reward-0.log')), 'no role process was started');

  const srv = http.createServer((_req, res) => { res.statusCode = 500; res.end('scorer crashed'); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/score`;
  const down = await ppo(t, 'http-500', { kind: 'http', url, retries: 1, http: { backoffMs: 10 } });
  t.not(down.code, 0);
  t.match(down.stderr, new RegExp(`reward/0\\.score at ppo step 1 failed \\(not retriable\\): method_failed: POST ${url} failed after 2 attempts: HTTP 500 Internal Server Error: scorer crashed`));
});
