// `npm run bench -- runtime [--json]`: the runtime's transport through its
// whole stack (protocol encode/decode, ROUTER/DEALER, role server), against
// a fixture role process pinned to one core as a placement pins roles (the
// last allowed core) and this process (the coordinator) pinned to the first:
// unpinned, its threads wander onto the role's core and the figures swing by
// 2x from run to run on a 2-core VM.
// - round trip of a small request (ping), p50 and p99, over ipc and tcp (CURVE);
// - throughput of 1, 16 and 64 MB f32 tensors: one way (the role answers with
//   the size only) and echoed back, over ipc and tcp (CURVE).
// Bars: p50 round trip < 150 us; 64 MB one way over ipc >= 2 GB/s.
// Baseline, in the same run: a bare zeromq.js pair (bench/zmq-pair.ts) over
// ipc, plain tcp and tcp + CURVE (the difference of the last two is the cost
// of encryption); the ratio column is the runtime's figure over the bare one
// on the same transport (1.00x: it adds nothing).
import { execFileSync } from 'node:child_process';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../src/runtime/runtime.js';
import type { RoleHandle } from '../src/runtime/handles.js';
import { readNodeKeys } from '../src/runtime/curve.js';
import { runNode } from '../src/runtime/remote-agent.js';
import { allowedCpus } from '../src/runtime/placement.js';
import { Reporter, type BenchOptions } from './report.js';
import { barePair, type PairFigures, type PairTransport } from './zmq-pair.js';

const ROLE = 'test/fixtures/roles/echo.js';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

// V8 needs about 1,500 calls to settle this path (measured: 83-110 us before, 57-66 after).
const PINGS = { warmup: 2000, n: 3000 };
const SIZES_MB = [1, 16, 64];
const reps = (mb: number) => (mb === 1 ? 200 : mb === 16 ? 30 : 10);

async function latency(r: Reporter, transport: string, role: RoleHandle, bare?: PairFigures): Promise<void> {
  for (let i = 0; i < PINGS.warmup; i++) await role.call('ping');
  const n = PINGS.n;
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await role.call('ping');
    us.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  us.sort((a, b) => a - b);
  const p50 = percentile(us, 0.5);
  r.add({
    name: `round trip small (ping) ${transport}`,
    figures: { p50_us: p50, p99_us: percentile(us, 0.99), n, bar: transport === 'ipc' ? (p50 < 150 ? 'p50<150us ok' : 'p50<150us MISSED') : '' },
    ...(bare && { ratio: percentile(bare.pingUs, 0.5) / p50 }),
  });
}

const gc = (() => {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/**
 * Frees the replies of the measurements before (hundreds of MB held by
 * ZeroMQ until the garbage collector drops them) outside the timed window:
 * without it their unmapping lands in the next measurement, and on this VM
 * it halved the 64 MB figure in one run of three.
 */
async function collectGarbage(): Promise<void> {
  gc();
  await new Promise((r) => setTimeout(r, 100));
}

/** The role process's CPU time so far (its `stats` report), in ms. */
async function cpuMs(role: RoleHandle): Promise<number> {
  const m = (await role.call('stats')).meta as { cpu_user_s: number; cpu_system_s: number };
  return (m.cpu_user_s + m.cpu_system_s) * 1e3;
}

async function throughput(r: Reporter, transport: string, role: RoleHandle, bare?: PairFigures): Promise<void> {
  for (const mb of SIZES_MB) {
    const n = (mb * 1024 * 1024) / 4;
    const data = new Float32Array(n).fill(1.25);
    const tensors = { x: { dtype: 'f32' as const, shape: [n], data } };
    const calls = reps(mb);
    for (const [method, ways] of [['sink', 1], ['echo', 2]] as const) {
      await role.call(method, { tensors });
      await collectGarbage();
      const role0 = await cpuMs(role), own0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) await role.call(method, { tensors });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const own = process.cpuUsage(own0), roleCpu = (await cpuMs(role)) - role0;
      const gbps = (ways * calls * mb * 1024 * 1024) / s / 1e9;
      const bar = transport === 'ipc' && mb === 64 && method === 'sink' ? (gbps >= 2 ? '>=2GB/s ok' : '>=2GB/s MISSED') : '';
      r.add({
        name: `${mb} MB ${method === 'sink' ? 'one way' : 'echoed'} ${transport}`,
        // CPU per call on each side: a figure that a busy machine disturbs less than wall time.
        figures: { gb_per_s: gbps, ms_per_call: (s / calls) * 1e3, coord_cpu_ms: (own.user + own.system) / 1e3 / calls, role_cpu_ms: roleCpu / calls, reps: calls, bar },
        ...(bare && method === 'sink' && { ratio: bare.oneWayS.get(mb)! / (s / calls) }),
      });
    }
  }
}

/**
 * Gradient averaging between two replicas (src/runtime/collective.ts), as a
 * trainable group does before each step: on one machine through replica 0
 * over ipc, and across machines through the coordinator's relay over tcp +
 * CURVE (the second machine is a node agent over loopback).
 */
async function allReduce(r: Reporter, cpus: number[]): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'qbench-ar-'));
  const rt = await Runtime.open({ runDir, listen: 'tcp://127.0.0.1:*' });
  const node = runNode({ coordinator: rt.tcpEndpoint!, keys: readNodeKeys(rt.nodeKeysFile!), name: 'other', log: () => {} });
  try {
    const devices = [`cpu:${cpus[0]}`, `cpu:${cpus.at(-1)}`];
    await rt.start({
      local: { replicas: 2, devices, module: ROLE },
      across: { replicas: 2, devices, module: ROLE, node: ['local', 'other'] },
    });
    const mb = 16, n = (mb << 20) / 4, reps = 10;
    const x = { dtype: 'f32' as const, shape: [2, n], data: new Float32Array(2 * n).fill(0.5) };
    for (const [group, how] of [['local', 'ipc, through replica 0'], ['across', 'tcp+curve, through the relay']] as const) {
      await rt.group(group).call('allreduce', { tensors: { x } });
      await collectGarbage();
      let ms = 0;
      // Timed inside the replicas (the slower one's), not counting the shards' trip from the coordinator and back.
      for (let i = 0; i < reps; i++) ms += Math.max(...(await rt.group(group).call('allreduce', { tensors: { x } })).replies.map((y) => y.metrics.allreduce_ms));
      const s = ms / 1e3 / reps;
      r.add({ name: `gradient all-reduce, 2 replicas x ${mb} MB, ${how}`, figures: { gb_per_s: (mb * 1024 * 1024) / s / 1e9, ms_per_call: s * 1e3, reps, bar: '' } });
    }
  } finally {
    await rt.shutdown();
    await node;
    rmSync(runDir, { recursive: true, force: true });
  }
}

/** One in-process copy of 64 MB: what the memory system gives right now (a receive costs at least one such copy). */
function memcpyReference(r: Reporter): void {
  const a = Buffer.alloc(64 << 20, 1), b = Buffer.alloc(64 << 20);
  a.copy(b);
  const reps = 10, t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) a.copy(b);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  r.add({ name: 'reference: memcpy 64 MB in one process', figures: { gb_per_s: (reps * a.length) / s / 1e9, ms_per_call: (s / reps) * 1e3, reps, bar: '' } });
}

export async function run(opts: BenchOptions): Promise<void> {
  const r = new Reporter(opts, 'bare zmq');
  memcpyReference(r);
  const runDir = mkdtempSync(join(tmpdir(), 'qbench-'));
  const cpus = allowedCpus();
  const core = cpus.at(-1)!;
  const rt = await Runtime.open({ runDir, listen: 'tcp://127.0.0.1:*' });
  const node = runNode({ coordinator: rt.tcpEndpoint!, keys: readNodeKeys(rt.nodeKeysFile!), name: 'loopback', log: () => {} });
  try {
    // Pinning matters on a VM: an unpinned role's threads wake each other
    // across cores (an interprocessor interrupt each), about 40 us more per round trip here.
    await rt.start({
      local: { replicas: 1, devices: [`cpu:${core}`], module: ROLE },
      remote: { replicas: 1, devices: [`cpu:${core}`], module: ROLE, node: 'loopback' },
    });
    // Pinned only now: placement checks roles against this process's own mask.
    // -a: every thread of this process; threads started later inherit the mask.
    if (cpus.length > 1) execFileSync('taskset', ['-a', '-p', '-c', String(cpus[0]), String(process.pid)], { stdio: 'ignore' });
    const bare = new Map<PairTransport, PairFigures>();
    for (const transport of ['ipc', 'tcp', 'tcp+curve'] as const) {
      const b = await barePair(runDir, core, { transport, pings: PINGS.n, warmup: PINGS.warmup, sizesMb: SIZES_MB, reps });
      bare.set(transport, b);
      for (const mb of SIZES_MB) r.add({ name: `baseline: bare zmq pair, ${mb} MB one way ${transport}`, figures: { gb_per_s: (mb * 1024 * 1024) / b.oneWayS.get(mb)! / 1e9, ms_per_call: b.oneWayS.get(mb)! * 1e3, bar: '' } });
      b.pingUs.sort((x, y) => x - y);
      r.add({ name: `baseline: bare zmq pair, ping ${transport}`, figures: { p50_us: percentile(b.pingUs, 0.5), p99_us: percentile(b.pingUs, 0.99), n: PINGS.n, bar: '' } });
    }
    await latency(r, 'ipc', rt.role('local', 0), bare.get('ipc'));
    await latency(r, 'tcp+curve', rt.role('remote', 0), bare.get('tcp+curve'));
    await throughput(r, 'ipc', rt.role('local', 0), bare.get('ipc'));
    await throughput(r, 'tcp+curve', rt.role('remote', 0), bare.get('tcp+curve'));
  } finally {
    await rt.shutdown();
    await node;
    rmSync(runDir, { recursive: true, force: true });
  }
  // Unpinned again: the all-reduce's replicas go on every core.
  if (cpus.length > 1) execFileSync('taskset', ['-a', '-p', '-c', cpus.join(','), String(process.pid)], { stdio: 'ignore' });
  await allReduce(r, cpus);
  r.finish(`runtime: a fixture role process pinned to cpu ${core}, the coordinator to cpu ${cpus[0]} (tcp is CURVE-encrypted, as the runtime uses it across machines)`);
}
