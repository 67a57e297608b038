// The coordinator's bookkeeping: a record per connected peer, per role
// replica (its process, state and calls in flight) and per remote node, and
// the small operations on them that do not need the sockets.
import type * as zmq from 'zeromq';
import type { CallOptions, CallResult, Payload, RoleHandle } from './handles.js';
import type { ReplicaPlan } from './placement.js';
import { RuntimeError, type Message, type Meta } from './protocol.js';
import type { RoleLog } from './role-log.js';
import { ReplayLog } from './replay-log.js';
import type { SendQueue } from './send-queue.js';

/**
 * starting: spawned, no hello yet; rebuilding: said hello, its state is being
 * restored (only the supervisor's calls reach it); ready: serving calls.
 */
export type ReplicaState = 'idle' | 'starting' | 'rebuilding' | 'ready' | 'restarting' | 'stopped' | 'failed';

/** A call waiting for its rep or err. */
export interface Pending {
  method: string;
  /** When it was sent (Date.now()). */
  sent: number;
  resolve(r: CallResult): void;
  reject(e: RuntimeError): void;
  timer?: NodeJS.Timeout;
}

/** A bound ROUTER: index 0 is the local ipc one, 1 the tcp (CURVE) one. */
export interface Endpoint {
  sock: zmq.Router;
  out: SendQueue;
  index: number;
  address: string;
}

/** A connection whose hello was accepted: a role replica or a remote node agent. */
export interface Peer {
  key: string;
  sock: Endpoint;
  id: Buffer;
  name: string;
  lastHeard: number;
  replica?: Replica;
  node?: RemoteNode;
  /** A role's heartbeat connection (from a thread that long methods do not block): it only beats. */
  beatsOnly?: boolean;
}

export interface Replica {
  plan: ReplicaPlan;
  log: RoleLog;
  state: ReplicaState;
  /** The secret of the current process; a hello or exit with another token is from an earlier one. */
  token: string;
  pid: number;
  peer: Peer | null;
  restarts: number;
  spawnedAt: number;
  lastHeard: number;
  /** The process beats from its own thread, so silence means hung even while it owes a reply. */
  beating: boolean;
  calls: number;
  /** Sequence number of the last call sent to the current process (the role serves them in this order). */
  seq: number;
  pending: Map<number, Pending>;
  /** State to rebuild a restarted process from. */
  replay: ReplayLog;
  /** Recent durations (ms) of each method, for deadlines derived from them. */
  durations: Map<string, number[]>;
  /** When the process was found dead or hung (Date.now()), until its replacement serves again. */
  downSince: number | null;
  /** Why it went down last. */
  downWhy: string;
  /** A snapshot the supervisor asked for is under way. */
  snapshotting: boolean;
  waiters: Set<{ resolve(): void; reject(e: RuntimeError): void }>;
  /** Resolves when the current process has exited (a restart waits for it). */
  exited: Promise<void>;
  markExited: () => void;
  handle: RoleHandle;
}

export interface RemoteNode {
  name: string;
  peer: Peer;
  info: Meta;
  pending: Map<number, Pending>;
}

export interface ReplicaStats {
  role: string;
  replica: number;
  node: string;
  state: ReplicaState;
  pid: number;
  restarts: number;
  calls: number;
  inFlight: number;
  logFile: string;
  /** The replay log: bytes held now and at most, and ms spent copying calls into it. */
  replay: { bytes: number; peakBytes: number; calls: number; recordMs: number; base: string | null };
  /** What the role's `stats` method reported (memory, threads, devices, ...), or its error. */
  report: Meta | { error: string };
}

type Call = (rep: Replica, method: string, payload?: Payload, opts?: CallOptions) => Promise<CallResult>;

export function newReplica(plan: ReplicaPlan, log: RoleLog, call: Call): Replica {
  const rep: Replica = {
    plan, log, state: 'idle', token: '', pid: 0, peer: null, restarts: 0, spawnedAt: 0, lastHeard: 0, beating: false, calls: 0, seq: 0,
    pending: new Map(), replay: new ReplayLog(), durations: new Map(), downSince: null, downWhy: '', snapshotting: false, waiters: new Set(), exited: Promise.resolve(), markExited: () => {},
    handle: { role: plan.role, replica: plan.replica, call: (m, p, o) => call(rep, m, p, o) },
  };
  return rep;
}

/** Resolves when the replica is ready; rejects when it is stopped, or at the deadline. */
export function waitReady(rep: Replica, deadline: number): Promise<void> {
  if (rep.state === 'ready') return Promise.resolve();
  const name = `${rep.plan.role}/${rep.plan.replica}`;
  if (rep.state === 'stopped' || rep.state === 'failed') return Promise.reject(new RuntimeError('role_missing', `${name} is ${rep.state}`));
  return new Promise((resolve, reject) => {
    const w = {
      resolve: () => { clearTimeout(timer); rep.waiters.delete(w); resolve(); },
      reject: (e: RuntimeError) => { clearTimeout(timer); rep.waiters.delete(w); reject(e); },
    };
    const timer = deadline === Infinity ? undefined : setTimeout(() => w.reject(new RuntimeError('timeout', `${name} was not ready in time (state ${rep.state})`, true)), deadline - Date.now());
    rep.waiters.add(w);
  });
}

/** Settles the pending call a rep or err answers; one nobody waits for any more is dropped. */
export function settle(pending: Map<number, Pending>, m: Message): void {
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  clearTimeout(p.timer);
  if (m.kind === 'err') p.reject(RuntimeError.from(m.error!));
  else p.resolve({ meta: m.meta ?? {}, tensors: m.data, metrics: (m.metrics as Record<string, number>) ?? {} });
}

export function failAll(pending: Map<number, Pending>, err: RuntimeError): void {
  for (const p of pending.values()) {
    clearTimeout(p.timer);
    p.reject(err);
  }
  pending.clear();
}
