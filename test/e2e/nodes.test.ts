// `quartet train` across two machines, as a user runs it: the run listens on
// tcp (runtime.listen), a `quartet node` started with the run's key file joins
// it, and the placement puts one actor replica and the critic on that node.
// The node agent rejoins the coordinator of every step (sft, rm, ppo), the
// actor group trains data-parallel across the machines through the
// coordinator's gradient relay, and everything exits by itself at the end.
// (The second machine is this one over loopback: test/runtime/node.test.ts
// runs a node agent in its own network namespace.)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../../src/util/paths.js';
import { processesMentioning, waitFor } from '../runtime/helpers.js';
import { quartet } from './quartet.js';
import { makeTinyRun } from './tiny-run.js';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  const port = (s.address() as { port: number }).port;
  await new Promise((res) => s.close(res));
  return port;
}

t.test('quartet train with an actor replica and the critic on another machine', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'q-e2e-nodes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const world = makeTinyRun(join(dir, 'world'), { rows: 200, seed: 5 });
  const port = await freePort();
  const listen = `tcp://127.0.0.1:${port}`;
  const config = {
    seed: 5,
    data: { maxPromptLen: 16, maxAnswerLen: 10, workers: 1 },
    runtime: { listen, nodeTimeout: 60 },
    actor: { replicas: 2, devices: ['cpu:0', 'cpu:1'], node: 'local,other', threads: 1, maxRestarts: 0 },
    critic: { devices: ['cpu:1'], node: 'other', threads: 1, maxRestarts: 0 },
    reference: { devices: ['cpu:0'], threads: 1, maxRestarts: 0 },
    reward: { devices: ['cpu:1'], threads: 1, maxRestarts: 0 },
    sft: { batchSize: 8, maxSteps: 3, dropout: false },
    rm: { batchSize: 8, maxSteps: 2 },
    ppo: { maxSteps: 2, promptBatchSize: 8, trainBatchSize: 8, maxNewTokens: 6 },
  };
  const cfgFile = join(dir, 'cfg.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const run = join(dir, 'run');

  const training = quartet(t, ['train', '--config', cfgFile, '--actor-model', world.model, '--reward-model', world.model, '--data', world.data, '--output-dir', run]);
  // The user copies <run>/keys/node.json to the other machine once the run has made it.
  const keys = join(run, 'keys', 'node.json');
  await waitFor('the run to write its node key file', () => existsSync(keys), 60_000);
  const node = spawn(process.execPath, [join(repoRoot, 'bin', 'quartet.js'), 'node', '--coordinator', listen, '--keys', keys, '--name', 'other'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let nodeOut = '';
  node.stdout!.on('data', (b) => (nodeOut += b));
  node.stderr!.on('data', (b) => (nodeOut += b));
  const nodeExit = new Promise<number | null>((res) => node.on('close', (code) => res(code)));
  t.teardown(() => {
    if (node.exitCode === null) node.kill('SIGKILL');
  });

  const r = await training;
  t.equal(r.code, 0, `quartet train exits 0 (stderr tail: ${r.stderr.slice(-1500)})`);
  t.match(r.stdout, new RegExp(`other machines: copy ${keys} there and run: npx quartet node --coordinator ${listen} --keys node.json --name NAME`), 'the run says how other machines join');
  const code = await Promise.race([nodeExit, new Promise((res) => setTimeout(() => res('still running'), 15_000))]);
  t.equal(code, 0, `the node agent exits by itself when the run ends (its output: ${nodeOut.trim().split('\n').slice(-4).join(' | ')})`);
  t.equal(nodeOut.match(/joined tcp:/g)?.length, 3, 'it joined the coordinator of each step: sft, rm, ppo');
  t.match(nodeOut, /started actor\/1/);
  t.match(nodeOut, /started critic\/0/);
  t.match(readFileSync(join(run, 'logs', 'critic-0.log'), 'utf8'), /started critic\/0 on other/);
  const coordLog = readFileSync(join(run, 'logs', 'coordinator.log'), 'utf8');
  t.match(coordLog, new RegExp(`collective 'actor': replicas on local, other average through a relay on port ${port + 1}`), 'the actor group averaged its gradients across the machines, on the port after the listen port');
  const rows = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string; step: number });
  t.same(rows.filter((x) => x.phase === 'ppo').map((x) => x.step), [1, 2], 'both PPO steps ran');
  await waitFor('every role process to be gone', () => processesMentioning(listen).length === 0 && processesMentioning(run).length === 0, 10_000);
  t.pass('no process of the run is left');
});
