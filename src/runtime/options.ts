// The coordinator's options: one interface, one defaults object, each
// supplied option checked by name.
import type { RunKeys } from './curve.js';

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
  /** A role or node silent this long (while it owes no reply) is declared hung. */
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
  /** Default deadline of a call; 0: none. */
  callTimeoutMs?: number;
  /** After bye (and after SIGTERM), how long a role gets before SIGKILL. */
  stopGraceMs?: number;
}

export type ResolvedOptions = Required<Omit<RuntimeOptions, 'listen' | 'keys'>> & Pick<RuntimeOptions, 'listen' | 'keys'>;

export const DEFAULTS = {
  echo: null,
  heartbeatMs: 500,
  peerTimeoutMs: 5000,
  coordinatorTimeoutMs: 30_000,
  startTimeoutMs: 60_000,
  nodeTimeoutMs: 60_000,
  callTimeoutMs: 600_000,
  stopGraceMs: 3000,
} as const;

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
  if (o.echo !== undefined && o.echo !== null && typeof o.echo !== 'function') throw new Error(`runtime options: 'echo' must be a function or null`);
  const r = { ...DEFAULTS, ...o } as ResolvedOptions;
  for (const k of ['heartbeatMs', 'peerTimeoutMs', 'coordinatorTimeoutMs', 'startTimeoutMs', 'nodeTimeoutMs', 'callTimeoutMs', 'stopGraceMs'] as const)
    if (typeof r[k] !== 'number' || !(r[k] >= 0) || !Number.isFinite(r[k])) throw new Error(`runtime options: '${k}' must be a number of ms >= 0, got ${JSON.stringify(r[k])}`);
  if (r.heartbeatMs < 10) throw new Error(`runtime options: 'heartbeatMs' must be at least 10`);
  for (const k of ['peerTimeoutMs', 'coordinatorTimeoutMs'] as const)
    if (r[k] < 2 * r.heartbeatMs) throw new Error(`runtime options: '${k}' must be at least twice 'heartbeatMs'`);
  return r;
}
