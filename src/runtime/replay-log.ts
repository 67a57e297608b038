// What the supervisor needs to rebuild a trainable role exactly where its
// dead predecessor was: the newest snapshot of its state (a folder written by
// the role's own `save {dir, optimizer: true}`, by the trainer's checkpoints
// or by the runtime itself) and every state-changing call the role answered
// since, with its payload and its reply's metrics.
//
// Which calls change state is a protocol convention (docs/protocol.md):
// methods named `train_*` do; `load {optimizer: true}` replaces the state with
// a folder; a `save {optimizer: true}` (not the moving average) records it.
// Roles serve calls in arrival order, so a snapshot taken by the call with
// sequence number s holds exactly the calls numbered below s.
import { cloneTensors, tensorsBytes, type Tensors } from './wire.js';
import type { Meta, Metrics } from './protocol.js';

export interface LoggedCall {
  seq: number;
  method: string;
  meta: Meta | undefined;
  tensors: Tensors;
  /** The original reply's metrics: a replay must reproduce them bit for bit. */
  metrics: Metrics;
}

/** How a call touches a role's state. */
export type StateEffect = 'changes' | 'snapshot' | 'restores' | 'none';

export function stateEffect(method: string, meta: Meta | undefined): StateEffect {
  if (method.startsWith('train_')) return 'changes';
  const full = meta?.optimizer === true && typeof meta.dir === 'string';
  if (method === 'save' && full && meta.ema !== true) return 'snapshot';
  if (method === 'load' && full) return 'restores';
  return 'none';
}

export class ReplayLog {
  /** The folder the state was last saved to or loaded from; null: the start-up weights. */
  base: string | null = null;
  private readonly calls: LoggedCall[] = [];
  private bytesHeld = 0;
  /** Calls answered since start-up: whether the state differs from the start-up weights. */
  private changed = false;
  /** Time spent copying calls into the log (its cost to the run), and the most bytes it held. */
  recordMs = 0;
  peakBytes = 0;

  get entries(): readonly LoggedCall[] {
    return this.calls;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  /** True when a restart from the start-up arguments alone would lose trained state. */
  get hasState(): boolean {
    return this.changed || this.base !== null;
  }

  /** A state-changing call that was answered. Its tensors are copied: the caller may reuse its buffers. */
  record(seq: number, method: string, meta: Meta | undefined, tensors: Tensors, metrics: Metrics): void {
    const t0 = performance.now();
    const copy = cloneTensors(tensors);
    this.calls.push({ seq, method, meta, tensors: copy, metrics });
    this.bytesHeld += tensorsBytes(copy);
    this.peakBytes = Math.max(this.peakBytes, this.bytesHeld);
    this.changed = true;
    this.recordMs += performance.now() - t0;
  }

  /** A snapshot or restore, sent as call `seq`, succeeded: calls before it are in `dir`. */
  rebase(dir: string, seq: number): void {
    this.base = dir;
    let keep = 0;
    while (keep < this.calls.length && this.calls[keep].seq < seq) keep++;
    for (const c of this.calls.splice(0, keep)) this.bytesHeld -= tensorsBytes(c.tensors);
  }
}

/** Metric names that measure time, which a replay need not reproduce. */
const TIMING = /(^|_)(time|ms|seconds|per_s)($|_)/;

/** The first metric a replayed call answered differently, or null when all agree bit for bit. */
export function metricsDiffer(original: Metrics, replayed: Metrics): string | null {
  for (const [k, v] of Object.entries(original)) {
    if (TIMING.test(k)) continue;
    if (!Object.is(v, replayed[k])) return `${k} was ${v}, replayed ${replayed[k]}`;
  }
  return null;
}
