// The runtime bench's baseline, measured in the same run: the same transfers
// over a bare zeromq.js ROUTER/DEALER pair (one frame per message part, no
// header, no role server), with the far end pinned and started the way the
// agent starts roles. What the runtime adds is the difference.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { withMallocPolicy } from '../src/runtime/agent.js';
import { SOCKET_BUFFER_BYTES } from '../src/runtime/send-queue.js';
import { distPath } from '../src/util/paths.js';

export interface PairFigures {
  pingUs: number[];
  /** Seconds per one-way message, by size in MB. */
  oneWayS: Map<number, number>;
}

/** ipc, plain tcp on loopback, or tcp with CURVE (as the runtime uses tcp): the cost of encryption is the difference of the last two. */
export type PairTransport = 'ipc' | 'tcp' | 'tcp+curve';

export async function barePair(runDir: string, core: number, opts: { transport?: PairTransport; pings: number; warmup: number; sizesMb: number[]; reps: (mb: number) => number }): Promise<PairFigures> {
  const transport = opts.transport ?? 'ipc';
  const path = join(runDir, 'bare.sock');
  const server = zmq.curveKeyPair(), client = zmq.curveKeyPair();
  const curve = transport === 'tcp+curve';
  // A context of its own: ZeroMQ's authentication hook (ZAP) is per context, and the runtime's
  // (src/runtime/curve.ts) would refuse this pair's client key.
  const context = new zmq.Context();
  const sock = new zmq.Router({ context, linger: 0, sendBufferSize: SOCKET_BUFFER_BYTES, receiveBufferSize: SOCKET_BUFFER_BYTES, ...(curve && { curveServer: true, curveSecretKey: server.secretKey }) });
  await sock.bind(transport === 'ipc' ? `ipc://${path}` : 'tcp://127.0.0.1:*');
  const endpoint = sock.lastEndpoint!;
  // The peer's keys go by environment, not argv (which `ps` shows).
  const keys = curve ? { QUARTET_BENCH_CURVE: JSON.stringify({ serverKey: server.publicKey, publicKey: client.publicKey, secretKey: client.secretKey }) } : {};
  const child = spawn('taskset', ['-c', String(core), process.execPath, distPath('bench/zmq-peer.js'), endpoint], {
    stdio: 'inherit', env: { ...process.env, ...keys, GLIBC_TUNABLES: withMallocPolicy(process.env.GLIBC_TUNABLES) },
  });
  const exited = once(child, 'exit');
  try {
    const [id] = await sock.receive();
    const call = async (frames: (Buffer | string)[]) => {
      await sock.send([id, ...frames]);
      return sock.receive();
    };
    const ping = Buffer.alloc(48);
    for (let i = 0; i < opts.warmup; i++) await call(['ping', ping]);
    const pingUs: number[] = [];
    for (let i = 0; i < opts.pings; i++) {
      const t0 = process.hrtime.bigint();
      await call(['ping', ping]);
      pingUs.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    const oneWayS = new Map<number, number>();
    for (const mb of opts.sizesMb) {
      const data = Buffer.alloc(mb << 20, 1);
      const reps = opts.reps(mb);
      // A few untimed first: the peer's first large receives grow its heap.
      for (let i = 0; i < Math.min(reps, 5); i++) await call(['sink', data]);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < reps; i++) await call(['sink', data]);
      oneWayS.set(mb, Number(process.hrtime.bigint() - t0) / 1e9 / reps);
    }
    await sock.send([id, 'bye']);
    await exited;
    return { pingUs, oneWayS };
  } finally {
    child.kill();
    await sock.unbind(endpoint).catch(() => {});
    sock.close();
    // ZeroMQ removes the socket file in its own thread, some time later.
    rmSync(path, { force: true });
  }
}
