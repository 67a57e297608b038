// The coordinator's options: one interface, one defaults object, each
// supplied option checked by name.
import type { RunKeys } from './curve.js';
import { parseFault, type Fault } from './faults.js';

/** What the supervisor did, for metrics.jsonl: a role lost and how long it took to serve again. */
export interface RuntimeEvent {
  event: 'role_down' | 'role_restored' | 'role_snapshot';
  role: string;
  replica: number;
  /** Why it went down (role_down). */
  why?: string;
  /** From death to serving again, state rebuilt (role_restored). */
  seconds?: number;
  /** Calls replayed into the new process (role_restored). */
  replayed?: number;
  /** The snapshot folder (role_restored: the one rebuilt from; role_snapshot: the one taken). */
  dir?: string | null;
}

export interface RuntimeOptions {
  /** The run directory: logs/ and keys/ go here (and the ipc socket, when the path is short enough). */
  runDir: string;
  /** Accept other machines on this tcp endpoint (CURVE), e.g. 'tcp://10.0.0.1:5555' or 'tcp://127.0.0.1:*'. */
  listen?: string;
  /**
   * The run's CURVE keys (with `listen`; default: made afresh). Successive
   * coordinators of one run (one per training step) share them, so that the
   * node agents that joined the first rejoin the next.
   */
  keys?: RunKeys;
  /** Echo every role output line, prefixed '[role/replica]', to this function (e.g. console.log). */
  echo?: ((line: string) => void) | null;
  /** Interval of heartbeats both ways. */
  heartbeatMs?: number;
  /**
   * A role or node silent this long is declared hung. Roles that beat from a
   * thread of their own (every JavaScript role) are watched while they compute
   * too; others only while they owe no reply.
   */
  peerTimeoutMs?: number;
  /**
   * Roles and nodes exit after this long without a word from the coordinator.
   * Longer than peerTimeoutMs because the coordinator's thread also does the
   * trainer's work; local roles exit at once when the coordinator process dies,
   * nodes when their connection to it closes.
   */
  coordinatorTimeoutMs?: number;
  /** From spawn to hello. */
  startTimeoutMs?: number;
  /** How long start() waits for the remote nodes a plan names to join. */
  nodeTimeoutMs?: number;
  /** Deadline of a call of a method with no deadline of its own and too few measured durations; 0: none. */
  callTimeoutMs?: number;
  /** Deadlines by method name, in ms (e.g. { train_ppo: 300000 }); a role past one is killed and restarted and the call retried. */
  deadlines?: Record<string, number>;
  /** Otherwise a method's deadline is this multiple of its longest recent duration... */
  deadlineFactor?: number;
  /** ...but never less than this (ms). */
  deadlineFloorMs?: number;
  /** Bytes of replayable calls kept per role before the supervisor has the role snapshot its state. */
  replayLogBytes?: number;
  /** Largest message accepted from any peer (ZeroMQ drops the connection of a peer that sends more). */
  maxMessageBytes?: number;
  /** Faults to inject (src/runtime/faults.ts), as 'ROLE/REPLICA:METHOD:N:SIGNAL[:MS]' or parsed; local roles only. */
  faults?: (string | Fault)[];
  /** Supervision events (roles lost, restored, snapshotted). */
  onEvent?: ((e: RuntimeEvent) => void) | null;
  /** After bye (and after SIGTERM), how long a role gets before SIGKILL. */
  stopGraceMs?: number;
}

export type ResolvedOptions = Required<Omit<RuntimeOptions, 'listen' | 'keys' | 'faults'>> & Pick<RuntimeOptions, 'listen' | 'keys'> & { faults: Fault[] };

const GiB = 1024 ** 3;

export const DEFAULTS = {
  echo: null,
  heartbeatMs: 500,
  peerTimeoutMs: 5000,
  coordinatorTimeoutMs: 30_000,
  startTimeoutMs: 60_000,
  nodeTimeoutMs: 60_000,
  callTimeoutMs: 600_000,
  deadlines: {} as Record<string, number>,
  deadlineFactor: 10,
  deadlineFloorMs: 120_000,
  replayLogBytes: 1 * GiB,
  maxMessageBytes: 8 * GiB,
  onEvent: null,
  faults: [] as Fault[],
  stopGraceMs: 3000,
};

const KNOWN = new Set(['runDir', 'listen', 'keys', ...Object.keys(DEFAULTS)]);

export function resolveOptions(o: RuntimeOptions): ResolvedOptions {
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new Error(`runtime options: unknown option '${k}' (known: ${[...KNOWN].join(', ')})`);
  if (typeof o.runDir !== 'string' || !o.runDir) throw new Error(`runtime options: 'runDir' must be a directory path`);
  if (o.listen !== undefined && !/^tcp:\/\/[^:]+:(\d+|\*)$/.test(o.listen)) throw new Error(`runtime options: 'listen' must look like tcp://HOST:PORT, got '${o.listen}'`);
  if (o.keys !== undefined) {
    const ok = (k: unknown) => typeof (k as { publicKey?: unknown })?.publicKey === 'string' && typeof (k as { secretKey?: unknown })?.secretKey === 'string';
    if (!ok(o.keys?.server) || !ok(o.keys?.node)) throw new Error(`runtime options: 'keys' must be {server, node}, each {publicKey, secretKey}`);
    if (o.listen === undefined) throw new Error(`runtime options: 'keys' are for tcp; give 'listen' too`);
  }
  for (const k of ['echo', 'onEvent'] as const)
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'function') throw new Error(`runtime options: '${k}' must be a function or null`);
  const r = { ...DEFAULTS, ...o, faults: (o.faults ?? []).map((f) => (typeof f === 'string' ? parseFault(f) : f)) } as ResolvedOptions;
  if (r.deadlines === null || typeof r.deadlines !== 'object' || Array.isArray(r.deadlines)) throw new Error(`runtime options: 'deadlines' must be an object of method: ms`);
  for (const [m, v] of Object.entries(r.deadlines))
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new Error(`runtime options: 'deadlines.${m}' must be a number of ms > 0, got ${JSON.stringify(v)}`);
  for (const k of ['deadlineFactor', 'replayLogBytes', 'maxMessageBytes'] as const)
    if (typeof r[k] !== 'number' || !(r[k] > 0) || !Number.isFinite(r[k])) throw new Error(`runtime options: '${k}' must be a number > 0, got ${JSON.stringify(r[k])}`);
  for (const k of ['heartbeatMs', 'peerTimeoutMs', 'coordinatorTimeoutMs', 'startTimeoutMs', 'nodeTimeoutMs', 'callTimeoutMs', 'deadlineFloorMs', 'stopGraceMs'] as const)
    if (typeof r[k] !== 'number' || !(r[k] >= 0) || !Number.isFinite(r[k])) throw new Error(`runtime options: '${k}' must be a number of ms >= 0, got ${JSON.stringify(r[k])}`);
  if (r.heartbeatMs < 10) throw new Error(`runtime options: 'heartbeatMs' must be at least 10`);
  for (const k of ['peerTimeoutMs', 'coordinatorTimeoutMs'] as const)
    if (r[k] < 2 * r.heartbeatMs) throw new Error(`runtime options: '${k}' must be at least twice 'heartbeatMs'`);
  return r;
}
