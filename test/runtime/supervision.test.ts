// Supervision with real processes: a role killed or crashing mid-request, a
// frozen or spinning role, a role out of restarts, and a coordinator killed
// with SIGKILL. Each ends with no process of the run left.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { Runtime, startRuntime } from '../../src/runtime/runtime.js';
import type { RuntimeError } from '../../src/runtime/protocol.js';
import type { RuntimeEvent } from '../../src/runtime/options.js';
import { distPath } from '../../src/util/paths.js';
import { alive, processesMentioning, tempRunDir, waitFor } from './helpers.js';

const ECHO = 'test/fixtures/roles/echo.js';
// Short beats so that a hang is found in about a second.
const fast = { heartbeatMs: 100, peerTimeoutMs: 1500 };

async function pidOf(rt: Runtime, role: string): Promise<number> {
  return (await rt.role(role, 0).call('ping')).meta.pid as number;
}

t.test('restarts by policy: the call in flight goes again to the new process', async (t) => {
  const runDir = tempRunDir(t);
  const echoed: string[] = [];
  const events: RuntimeEvent[] = [];
  const rt = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO, restart: { maxRestarts: 6 } } }, {
    runDir, ...fast, echo: (l) => echoed.push(l), onEvent: (e) => events.push(e), deadlines: { once: 4000, spin_once: 1000 },
  });
  t.teardown(() => rt.shutdown());
  const reward = rt.role('reward', 0);
  const marker = (name: string) => join(runDir, `${name}.marker`);

  t.test('kill -9 mid-request: the call is answered by the restarted process', async (t) => {
    const pid = await pidOf(rt, 'reward');
    const call = reward.call('sleep', { meta: { ms: 1500 } });
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pid, 'SIGKILL');
    t.same((await call).meta, { slept: 1500 }, 'answered');
    const again = await pidOf(rt, 'reward');
    t.not(again, pid, 'by a new process');
    t.notOk(alive(pid));
    t.match(readFileSync(`${runDir}/logs/reward-0.log`, 'utf8'), /was killed by SIGKILL[^]*'sleep' goes again to the restarted process/);
  });

  t.test('a crash mid-request: same', async (t) => {
    const r = await reward.call('once', { meta: { marker: marker('crash'), then: 'crash' } });
    t.not(r.meta.pid, Number(readFileSync(marker('crash'), 'utf8')), 'answered by the next process');
    t.ok(echoed.includes('[reward/0] fixture: crash on request'), 'role output is echoed with its [role/replica] prefix');
  });

  t.test('a process stopped (SIGSTOP) while computing is found by its heartbeat thread going silent', async (t) => {
    const t0 = Date.now();
    const r = await reward.call('once', { meta: { marker: marker('freeze'), then: 'freeze' } });
    const frozen = Number(readFileSync(marker('freeze'), 'utf8'));
    t.not(r.meta.pid, frozen);
    // peerTimeoutMs is 1.5 s; a loaded 2-core machine may add a few seconds to start the next process.
    t.ok(Date.now() - t0 < 15_000, `answered ${Date.now() - t0} ms after the call, the stopped process replaced`);
    await waitFor('the frozen role to be gone', () => !alive(frozen), 5000);
    t.match(readFileSync(`${runDir}/logs/reward-0.log`, 'utf8'), /was silent for [\d.]+ s with 'once' in flight \(hung/);
  });

  t.test('a method stuck in a loop beats but misses its deadline: replaced, and the call goes again', async (t) => {
    // Its deadline (1 s) comes before the silence limit (1.5 s): the deadline is what finds it, even if a loaded machine starves the heartbeat thread.
    const r = await reward.call('spin_once', { meta: { marker: marker('spin') } });
    const spun = Number(readFileSync(marker('spin'), 'utf8'));
    t.not(r.meta.pid, spun);
    await waitFor('the spinning role to be gone', () => !alive(spun), 5000);
    t.match(readFileSync(`${runDir}/logs/reward-0.log`, 'utf8'), /ran 'spin_once' for [\d.]+ s, past its deadline of 1\.0 s \(stuck\)/);
  });

  t.test('a caller that gives its own timeout still gets it', async (t) => {
    await t.rejects(reward.call('sleep', { meta: { ms: 3000 } }, { timeoutMs: 300 }), { code: 'timeout', retriable: true, message: /reward\/0\.sleep: no reply within 300 ms/ });
  });

  t.test('each loss and recovery is an event', async (t) => {
    const downs = events.filter((e) => e.event === 'role_down');
    const back = events.filter((e) => e.event === 'role_restored');
    t.equal(downs.length, 4, 'kill, crash, freeze, spin');
    t.equal(back.length, 4);
    t.ok(back.every((e) => typeof e.seconds === 'number' && e.seconds > 0 && e.replayed === 0), 'with their cost in seconds; nothing to replay for a stateless role');
    t.equal((await rt.stats())[0].restarts, 4);
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
