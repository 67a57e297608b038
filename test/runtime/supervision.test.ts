// Supervision with real processes: a role killed or crashing mid-request, a
// frozen or spinning role, a role out of restarts, and a coordinator killed
// with SIGKILL. Each ends with no process of the run left.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import t from 'tap';
import { Coordinator, startRuntime } from '../../src/runtime/coordinator.js';
import type { RuntimeError } from '../../src/runtime/protocol.js';
import { distPath } from '../../src/util/paths.js';
import { alive, processesMentioning, tempRunDir, waitFor } from './helpers.js';

const ECHO = 'test/fixtures/roles/echo.js';
// Short beats so that a hang is found in about a second.
const fast = { heartbeatMs: 100, peerTimeoutMs: 1500 };

async function pidOf(rt: Coordinator, role: string): Promise<number> {
  return (await rt.role(role, 0).call('ping')).meta.pid as number;
}

t.test('restarts by policy', async (t) => {
  const runDir = tempRunDir(t);
  const echoed: string[] = [];
  const rt = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO, restart: { maxRestarts: 4 } } }, { runDir, ...fast, echo: (l) => echoed.push(l) });
  t.teardown(() => rt.shutdown());
  const reward = rt.role('reward', 0);

  t.test('kill -9 mid-request: the caller gets a retriable error, the role comes back', async (t) => {
    const pid = await pidOf(rt, 'reward');
    const call = reward.call('sleep', { meta: { ms: 20_000 } });
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    await t.rejects(call, { code: 'role_died', retriable: true, message: /reward\/0 was killed by SIGKILL; restarting it/ });
    t.ok(Date.now() - t0 < 3000, `noticed in ${Date.now() - t0} ms`);
    const again = await pidOf(rt, 'reward');
    t.not(again, pid, 'a new process answers');
    t.notOk(alive(pid));
  });

  t.test('a crash mid-request: same', async (t) => {
    await t.rejects(reward.call('crash'), { code: 'role_died', retriable: true, message: /exited with code 3/ });
    t.equal((await reward.call('echo', { meta: { ok: 1 } })).meta.ok, 1);
    t.ok(echoed.includes('[reward/0] fixture: crashing on request'), 'role output is echoed with its [role/replica] prefix');
  });

  t.test('a frozen process (SIGSTOP) is found by its silence and replaced', async (t) => {
    const pid = await pidOf(rt, 'reward');
    await t.rejects(reward.call('freeze', {}, { timeoutMs: 300 }), { code: 'timeout', retriable: true });
    const found = await waitFor('the frozen role to be killed', () => !alive(pid), 5000);
    t.ok(found < 4000, `killed ${found} ms after its caller's timeout`);
    t.not(await pidOf(rt, 'reward'), pid);
  });

  t.test('a method stuck in a loop: the caller times out, the role is replaced', async (t) => {
    const pid = await pidOf(rt, 'reward');
    await t.rejects(reward.call('spin', {}, { timeoutMs: 1500 }), { code: 'timeout', retriable: true });
    await waitFor('the spinning role to be killed', () => !alive(pid), 4000);
    t.not(await pidOf(rt, 'reward'), pid);
    const log = readFileSync(`${runDir}/logs/reward-0.log`, 'utf8');
    t.match(log, /fixture: freezing on request/, 'the role output is in its log');
    t.match(log, /\(hung\)/, 'the log says why the role was replaced');
    const stats = await rt.stats();
    t.equal(stats[0].restarts, 4);
  });

  t.test('no process left', async (t) => {
    await rt.shutdown();
    t.same(processesMentioning(runDir), []);
  });
});

t.test('a role out of restarts fails the run with its name and last log lines', async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({
    actor: { replicas: 1, devices: ['cpu:0'], module: ECHO },
    critic: { replicas: 1, devices: ['cpu:1'], module: ECHO, restart: { maxRestarts: 0 } },
  }, { runDir, heartbeatMs: 100 });
  t.teardown(() => rt.shutdown());
  const actorPid = await pidOf(rt, 'actor');
  await t.rejects(rt.role('critic', 0).call('crash'), { code: 'run_failed', retriable: false });
  const err: RuntimeError = await rt.failure;
  t.match(err.message, /role critic\/0 exited with code 3, and it has no restarts left/);
  t.match(err.message, /fixture: crashing on request/, 'the last log lines are in the message');
  await t.rejects(rt.role('actor', 0).call('ping'), { code: 'run_failed' });
  await rt.shutdown();
  t.notOk(alive(actorPid), 'the other roles were stopped');
  t.same(processesMentioning(runDir), []);
});

t.test('a role that never starts fails the start with its log', async (t) => {
  const runDir = tempRunDir(t);
  await t.rejects(
    startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], command: ['/bin/sh', '-c', 'echo no such program here >&2; exit 7'] } }, { runDir, heartbeatMs: 100 }),
    { code: 'run_failed', message: /reward\/0 exited with code 7[^]*no such program here/ },
  );
  t.same(processesMentioning(runDir), []);
});

t.test('kill -9 the coordinator: every role exits within a few seconds', async (t) => {
  const runDir = tempRunDir(t);
  const child = spawn(process.execPath, [distPath('test/fixtures/roles/coordinator-main.js'), runDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const p of processesMentioning(runDir)) process.kill(p, 'SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (c) => reject(new Error(`coordinator exited early with ${c}`)));
  });
  const { pids } = JSON.parse(line) as { pids: number[] };
  t.equal(pids.length, 2);
  t.ok(pids.every(alive), 'roles are up');
  child.kill('SIGKILL');
  const took = await waitFor('the roles to exit', () => !pids.some(alive), 5000);
  t.pass(`roles gone ${took} ms after the coordinator was killed`);
  t.same(processesMentioning(runDir), []);
});
