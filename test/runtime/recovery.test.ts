// Restart with state, on a fixture role whose state is one number changed by
// train_add (total = 1.5 total + x + v[0], order-sensitive like training):
// the supervisor rebuilds a killed role from its last snapshot and the calls
// answered since, so its state equals the lost one exactly, and a role whose
// state cannot be rebuilt stops the run instead of going on from scratch.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { RuntimeEvent } from '../../src/runtime/options.js';
import { startRuntime } from '../../src/runtime/runtime.js';
import { processesMentioning, tempRunDir } from './helpers.js';

const ECHO = 'test/fixtures/roles/echo.js';
const fast = { heartbeatMs: 100, peerTimeoutMs: 3000 };

/** What an undisturbed role holds after adding xs in order. */
function expected(xs: number[], start = 0): number {
  return xs.reduce((total, x) => total * 1.5 + x + Math.fround(x / 10), start);
}

const add = (x: number, extra: Record<string, unknown> = {}) => ({
  meta: { x, ...extra },
  tensors: { v: { dtype: 'f32' as const, shape: [1], data: Float32Array.of(x / 10) } },
});

t.test('a killed role comes back with its state: snapshot + replayed calls, bit-identical', async (t) => {
  const runDir = tempRunDir(t);
  const events: RuntimeEvent[] = [];
  const rt = await startRuntime({ critic: { replicas: 1, devices: ['cpu:0'], module: ECHO, restart: { maxRestarts: 4 } } }, { runDir, ...fast, onEvent: (e) => events.push(e) });
  t.teardown(() => rt.shutdown());
  const critic = rt.role('critic', 0);
  const xs = [1, 2, 3, 4, 5, 6, 7];
  const get = async () => (await critic.call('get')).meta;

  for (const x of xs.slice(0, 3)) await critic.call('train_add', add(x));
  // A trainer's checkpoint is a snapshot: calls before it need no replay.
  const ckpt = join(runDir, 'ckpt');
  await critic.call('save', { meta: { dir: ckpt, optimizer: true } });
  for (const x of xs.slice(3, 5)) await critic.call('train_add', add(x));

  const before = await get();
  t.equal(before.total, expected(xs.slice(0, 5)));
  process.kill(before.pid as number, 'SIGKILL');
  const after = await get();
  t.not(after.pid, before.pid, 'a new process');
  t.equal(after.total, before.total, 'the same state, bit for bit');
  t.equal(after.trained, 5);
  const back = events.find((e) => e.event === 'role_restored')!;
  t.equal(back.replayed, 2, 'two calls replayed onto the checkpoint');
  t.equal(back.dir, ckpt);

  // Killed inside a training call: the rebuilt role gets the call again, once.
  const marker = join(runDir, 'once');
  await critic.call('train_add', add(xs[5], { then: 'kill', marker }));
  await critic.call('train_add', add(xs[6]));
  t.equal((await get()).total, expected(xs), 'a call in flight at the death counts once');
  t.equal(events.filter((e) => e.event === 'role_restored').length, 2);
  await rt.shutdown();
  t.same(processesMentioning(runDir), []);
});

t.test('the replay log is bounded: past its cap the role snapshots its state', async (t) => {
  const runDir = tempRunDir(t);
  const events: RuntimeEvent[] = [];
  // Each call carries 4 bytes of tensors: a 10-byte cap snapshots every third call.
  const rt = await startRuntime({ actor: { replicas: 1, devices: ["cpu:0"], module: ECHO, restart: { maxRestarts: 2 } } }, { runDir, ...fast, replayLogBytes: 10, onEvent: (e) => events.push(e) });
  t.teardown(() => rt.shutdown());
  const actor = rt.role('actor', 0);
  const xs = [3, 1, 4, 1, 5, 9, 2];
  for (const x of xs) await actor.call('train_add', add(x));
  const before = (await actor.call('get')).meta;
  const snaps = events.filter((e) => e.event === 'role_snapshot');
  t.equal(snaps.length, 2, 'two snapshots for seven calls');
  const dir = join(runDir, 'recovery', 'actor-0');
  t.same(readdirSync(dir), [snaps[1].dir!.split('/').pop()], 'only the newest snapshot is kept');
  process.kill(before.pid as number, 'SIGKILL');
  const after = (await actor.call('get')).meta;
  t.equal(after.total, expected(xs));
  t.equal(events.find((e) => e.event === 'role_restored')!.replayed, 1);
  await rt.shutdown();
  t.notOk(existsSync(join(runDir, 'recovery')), 'the runtime removes its own snapshots at the end');
});

t.test('a role whose state cannot be rebuilt stops the run, never continues from scratch', async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({ critic: { replicas: 1, devices: ['cpu:0'], module: ECHO, restart: { maxRestarts: 3 } } }, { runDir, ...fast });
  t.teardown(() => rt.shutdown());
  const critic = rt.role('critic', 0);
  const ckpt = join(runDir, 'ckpt-gone');
  mkdirSync(ckpt);
  await critic.call('train_add', add(1));
  await critic.call('save', { meta: { dir: ckpt, optimizer: true } });
  // The snapshot disappears (a pruned or deleted checkpoint).
  const { rmSync } = await import('node:fs');
  rmSync(ckpt, { recursive: true });
  process.kill((await critic.call('get')).meta.pid as number, 'SIGKILL');
  await t.rejects(critic.call('get'), { code: 'run_failed', message: /critic\/0 could not be rebuilt after it was killed by SIGKILL: [^]*ckpt-gone[^]*rather than go on with the weights it started with/ });
  await rt.shutdown();
  t.same(processesMentioning(runDir), []);
});

t.test('a replica of a group with trained state is not rebuilt alone', async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({ actor: { replicas: 2, devices: ["cpu:0", "cpu:1"], module: ECHO, restart: { maxRestarts: 2 } } }, { runDir, ...fast });
  t.teardown(() => rt.shutdown());
  await rt.role('actor', 1).call('train_add', add(2));
  process.kill((await rt.role('actor', 1).call('get')).meta.pid as number, 'SIGKILL');
  const err = await rt.failure;
  t.match(err.message, /actor\/1 died with trained state, and a replica of a group of 2 cannot be rebuilt alone/);
  await rt.shutdown();
  t.same(processesMentioning(runDir), []);
});
