// Coordinator + four fixture roles (real processes) on two CPU cores:
// placement and affinity, calls to single replicas and to groups, a 100 MB
// tensor round trip, and no process or socket left behind.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { startRuntime } from '../../src/runtime/runtime.js';
import { inProcessRoles } from '../../src/runtime/handles.js';
import type { PlanInput } from '../../src/runtime/placement.js';
import { RuntimeError } from '../../src/runtime/protocol.js';
import { alive, cpusAllowed, processesMentioning, tempRunDir } from './helpers.js';

const ECHO = 'test/fixtures/roles/echo.js';

const plan: PlanInput = {
  actor: { replicas: 2, devices: ['cpu:0', 'cpu:1'], module: ECHO, args: { lr: 0.001 } },
  critic: { replicas: 1, devices: ['cpu:0-1'], module: ECHO },
  reference: { replicas: 1, devices: ['cpu:1'], module: ECHO },
  reward: { replicas: 3, devices: ['cpu:0'], module: ECHO },
};

t.test('four roles on two cores', async (t) => {
  const runDir = tempRunDir(t);
  // Hang detection is supervision.test.ts's subject; here a busy machine must not trigger it.
  const rt = await startRuntime(plan, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());

  t.test('placement: affinity, threads, devices and args reach each role', async (t) => {
    const expect: Record<string, string[]> = { actor: ['0', '1'], critic: ['0-1'], reference: ['1'], reward: ['0', '0', '0'] };
    for (const [role, cpus] of Object.entries(expect)) {
      for (let i = 0; i < cpus.length; i++) {
        const r = await rt.role(role, i).call('placement');
        const pid = r.meta.pid as number;
        t.equal(cpusAllowed(pid), cpus[i], `${role}/${i} Cpus_allowed_list from /proc/${pid}/status`);
        t.equal(r.meta.cpus, cpus[i], `${role}/${i} sees the same mask itself`);
        t.equal(r.meta.threads, cpus[i] === '0-1' ? 2 : 1, `${role}/${i} thread count`);
        t.equal(r.meta.cuda, '', `${role}/${i} sees no GPU`);
      }
    }
    const a = await rt.role('actor', 1).call('placement');
    // The runtime adds the group's gradient-averaging endpoint (src/runtime/collective.ts) to the plan's args.
    const { collective, ...own } = a.meta.args as Record<string, unknown>;
    t.same(own, { lr: 0.001 });
    t.match(collective, { group: 'actor', size: 2, endpoint: /^ipc:\/\/.*g\d+\.sock$/ });
    t.same(a.meta.devices, ['cpu:1']);
  });

  t.test('single replica: meta and tensors of every dtype come back', async (t) => {
    const tensors = {
      f: { dtype: 'f32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
      i: { dtype: 'i32' as const, shape: [4], data: Int32Array.from([1, -2, 3, 2 ** 31 - 1]) },
      h: { dtype: 'bf16' as const, shape: [1], data: Uint16Array.from([0x3f80]) },
      b: { dtype: 'u8' as const, shape: [3], data: Uint8Array.from([0, 255, 7]) },
      l: { dtype: 'i64' as const, shape: [1], data: BigInt64Array.from([-(2n ** 40n)]) },
      e: { dtype: 'f32' as const, shape: [0, 5], data: new Float32Array(0) },
    };
    const r = await rt.role('critic', 0).call('echo', { meta: { step: 7, tag: 'x' }, tensors });
    t.same(r.meta, { step: 7, tag: 'x', role: 'critic', replica: 0 });
    for (const [n, x] of Object.entries(tensors)) {
      t.equal(r.tensors[n].dtype, x.dtype, `${n} dtype`);
      t.same(r.tensors[n].shape, x.shape, `${n} shape`);
      t.same([...r.tensors[n].data], [...x.data], `${n} data`);
    }
  });

  t.test('group call: rows sliced per replica, gathered in order', async (t) => {
    const rows = 7;
    const x = { dtype: 'f32' as const, shape: [rows, 2], data: Float32Array.from({ length: rows * 2 }, (_, i) => i) };
    const r = await rt.group('reward').call('tag', { tensors: { x } });
    t.same([...r.tensors.x.data], [...x.data], 'rows come back in order');
    t.same([...r.tensors.who.data], [0, 0, 0, 1, 1, 2, 2], 'replica i got the i-th contiguous part (3, 2, 2 rows)');
    t.equal(r.replies.length, 3);
    t.ok(Math.abs(r.metrics.rows - 7 / 3) < 1e-12, 'metrics are the mean over replicas');
    // Fewer rows than replicas: the idle replica is not called.
    const small = await rt.group('reward').call('tag', { tensors: { x: { dtype: 'f32', shape: [2, 1], data: Float32Array.from([5, 6]) } } });
    t.same([...small.tensors.who.data], [0, 1]);
    t.equal(small.replies.length, 2);
    // A tensor listed in 'whole' reaches every replica unsliced (echo returns it, so it comes back once per replica).
    const w = { dtype: 'i32' as const, shape: [2], data: Int32Array.from([7, 8]) };
    const both = await rt.group('actor').call('echo', { tensors: { x: { dtype: 'f32', shape: [4, 1], data: Float32Array.from([1, 2, 3, 4]) }, w } }, { whole: ['w'] });
    t.same([...both.tensors.x.data], [1, 2, 3, 4]);
    t.same([...both.tensors.w.data], [7, 8, 7, 8]);
    await t.rejects(rt.group('actor').call('echo', { tensors: { a: x, b: { dtype: 'f32', shape: [3], data: new Float32Array(3) } } }), { code: 'bad_message', message: /must agree on dim 0/ });
    const all = await rt.group('actor').broadcast('ping');
    t.equal(all.length, 2);
    const every = await rt.broadcast('ping');
    t.same(Object.keys(every).sort(), ['actor', 'critic', 'reference', 'reward']);
  });

  t.test('errors are values with codes', async (t) => {
    await t.rejects(rt.role('actor', 0).call('nope'), { code: 'unknown_method', retriable: false });
    await t.rejects(rt.role('actor', 0).call('fail'), { code: 'method_failed', message: 'asked to fail' });
    await t.rejects(rt.role('actor', 0).call('throw'), { code: 'method_failed', message: /plain error from the role/ });
    t.throws(() => rt.role('actor', 5), { code: 'role_missing' });
    t.throws(() => rt.group('policy'), { code: 'role_missing', message: /no role 'policy'/ });
    await t.rejects(rt.role('actor', 0).call('sleep', { meta: { ms: 2000 } }, { timeoutMs: 200 }), { code: 'timeout', retriable: true });
    // The role is fine after a timeout (it was busy, not hung) and still answers.
    t.equal((await rt.role('actor', 0).call('echo', { meta: { a: 1 } })).meta.a, 1);
  });

  t.test('a 100 MB tensor goes there and back with identical bytes', async (t) => {
    const n = 25 * 1024 * 1024;
    const data = new Float32Array(n);
    const bits = new Uint32Array(data.buffer);
    for (let i = 0; i < n; i++) bits[i] = Math.imul(i, 2654435761) >>> 0; // every bit pattern varies, NaNs included
    const r = await rt.role('reference', 0).call('echo', { tensors: { big: { dtype: 'f32', shape: [n], data } } });
    const back = r.tensors.big.data as Float32Array;
    t.equal(back.length, n);
    t.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(data.buffer)), 'bytes identical');
  });

  t.test('a role keeps freed receive memory: large messages stop page-faulting (ROLE_MALLOC_TUNABLES)', async (t) => {
    const n = 12 * 1024 * 1024; // 48 MB: above the size glibc would otherwise map and unmap per message
    const x = { dtype: 'f32' as const, shape: [n], data: new Float32Array(n).fill(1) };
    const role = rt.role('reference', 0);
    const faults = async () => (await role.call('stats')).meta.page_faults as number;
    const perCall: number[] = [];
    for (let i = 0; i < 6; i++) {
      const f0 = await faults();
      t.equal((await role.call('sink', { tensors: { x } })).meta.bytes, n * 4);
      perCall.push((await faults()) - f0);
    }
    // Without the policy every receive faults in all 12,288 pages; with it a warm
    // receive reuses freed memory (a receive may still grow the heap while the
    // garbage collector holds earlier buffers, hence the minimum).
    t.ok(Math.min(...perCall) < 1000, `page faults per 48 MB receive: ${perCall.join(', ')}`);
  });

  t.test('stats report each replica', async (t) => {
    const s = await rt.stats();
    t.equal(s.length, 7);
    for (const r of s) {
      t.equal(r.state, 'ready');
      t.ok((r.report as { rss: number }).rss > 0, `${r.role}/${r.replica} reports memory`);
    }
  });

  t.test('shutdown leaves no process and no socket', async (t) => {
    const pids = (await rt.stats()).map((s) => s.pid);
    const sock = rt.ipcEndpoint.slice('ipc://'.length);
    t.ok(existsSync(sock), 'the socket exists while running');
    await rt.shutdown();
    t.ok(pids.every((p) => !alive(p)), 'every role process is gone');
    t.same(processesMentioning(runDir), [], 'nothing with this run in its environment is left');
    t.notOk(existsSync(sock), 'the socket file is removed');
    await t.rejects(rt.role('actor', 0).call('ping'), { code: 'shutting_down' });
  });
});

t.test('in-process roles behave as role processes through the same interface', async (t) => {
  const roles = inProcessRoles({
    reward: [0, 1].map((i) => ({
      methods: {
        tag: (req: { tensors: Record<string, { shape: number[] }> }) => ({
          tensors: { who: { dtype: 'i32' as const, shape: [req.tensors.x.shape[0]], data: new Int32Array(req.tensors.x.shape[0]).fill(i) } },
        }),
      },
    })),
  });
  const r = await roles.group('reward').call('tag', { tensors: { x: { dtype: 'f32', shape: [3], data: new Float32Array(3) } } });
  t.same([...r.tensors.who.data], [0, 0, 1]);
  await t.rejects(roles.role('reward', 0).call('nope'), RuntimeError);
  t.throws(() => roles.group('actor'), { code: 'role_missing' });
});

t.test('a run directory too long for a unix socket path gets a short private socket folder', async (t) => {
  const base = tempRunDir(t);
  const runDir = join(base, 'x'.repeat(60), 'y'.repeat(60));
  const rt = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO } }, { runDir });
  t.teardown(() => rt.shutdown());
  const sock = rt.ipcEndpoint.slice('ipc://'.length);
  t.ok(sock.length < 100 && sock.startsWith(tmpdir()), `socket at ${sock}`);
  t.equal((await rt.role('reward', 0).call('echo', { meta: { x: 1 } })).meta.x, 1);
  await rt.shutdown();
  t.notOk(existsSync(dirname(sock)), 'its folder is removed at shutdown');
});

t.test('plans and options with mistakes are refused before anything starts', async (t) => {
  const runDir = tempRunDir(t);
  await t.rejects(startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO, gpus: 2 } as never }, { runDir }), /role 'reward': unknown field 'gpus'/);
  await t.rejects(startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO } }, { runDir, heartbeat: 1 } as never), /unknown option 'heartbeat'/);
  await t.rejects(
    startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO, node: 'gpu-1' } }, { runDir }),
    /places roles on node\(s\) gpu-1 but no 'listen' endpoint/,
  );
  await t.rejects(
    startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO, node: 'gpu-1' } }, { runDir, listen: 'tcp://127.0.0.1:*', nodeTimeoutMs: 300 }),
    /node\(s\) gpu-1 did not join tcp:\/\/127\.0\.0\.1:\d+ within 300 ms \(start them with: quartet node --coordinator/,
  );
  t.same(processesMentioning(runDir), []);
});
