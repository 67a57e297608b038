// What trainers hold: a handle per role replica and a group per role. The
// runtime's process-backed roles and in-process roles implement the same
// interfaces, so a trainer (or a test) takes `Roles` and never knows which.
import { RuntimeError, type Meta, type Metrics } from './protocol.js';
import type { Method, RoleSetup } from './role-server.js';
import { concatRows, sliceRows, type Tensors } from './wire.js';

export interface Payload {
  meta?: Meta;
  tensors?: Tensors;
}

export interface CallResult {
  meta: Meta;
  tensors: Tensors;
  metrics: Metrics;
}

export interface CallOptions {
  /** Fail with a retriable 'timeout' error after this long (default: the runtime's callTimeoutMs); 0: no deadline. */
  timeoutMs?: number;
  /** The training step the call belongs to, named in timeout and failure messages. */
  step?: number;
}

export interface RoleHandle {
  readonly role: string;
  readonly replica: number;
  call(method: string, payload?: Payload, opts?: CallOptions): Promise<CallResult>;
}

export interface GroupCallOptions extends CallOptions {
  /** Tensors sent whole to every replica rather than sliced along dim 0. */
  whole?: string[];
  /**
   * Every replica must get at least one row: for training calls, whose
   * replicas meet in a gradient all-reduce that would wait (until its timeout)
   * for a replica that was never called. Fewer rows than replicas then fails
   * at once instead.
   */
  allReplicas?: boolean;
}

export interface GroupResult extends CallResult {
  /** Each replica's own reply, in replica order (replicas that got no rows are left out). */
  replies: CallResult[];
}

/** The roles of a run, by name. */
export interface Roles {
  roleNames(): string[];
  group(role: string): RoleGroup;
  role(role: string, replica: number): RoleHandle;
}

/** The rows [offset, offset + rows) of a batch of `total` rows that replica `index` of `count` gets. */
export function shardRange(total: number, count: number, index: number): [number, number] {
  const base = Math.floor(total / count), extra = total % count;
  const start = index * base + Math.min(index, extra);
  return [start, start + base + (index < extra ? 1 : 0)];
}

export class RoleGroup {
  constructor(readonly role: string, readonly replicas: readonly RoleHandle[]) {
    if (replicas.length === 0) throw new RuntimeError('role_missing', `role '${role}' has no replicas`);
  }

  get size(): number {
    return this.replicas.length;
  }

  /**
   * Shards the batch: every tensor (except `whole` ones) is sliced along dim 0
   * into contiguous, nearly equal parts, replica i getting the i-th part; the
   * reply tensors are concatenated back in replica order, and metrics are the
   * mean over the replicas that ran. Meta goes unchanged to every replica.
   */
  async call(method: string, payload: Payload = {}, opts: GroupCallOptions = {}): Promise<GroupResult> {
    const tensors = payload.tensors ?? {};
    const whole = new Set(opts.whole ?? []);
    const sliced = Object.keys(tensors).filter((n) => !whole.has(n));
    if (sliced.length === 0)
      throw new RuntimeError('bad_message', `group '${this.role}'.call('${method}'): no tensor to slice; use broadcast() or role(name, i).call()`);
    const rows = tensors[sliced[0]].shape[0];
    for (const n of sliced) {
      const s = tensors[n].shape;
      if (s.length === 0 || s[0] !== rows)
        throw new RuntimeError('bad_message', `group '${this.role}'.call('${method}'): tensor '${n}' has shape [${s}] but '${sliced[0]}' has ${rows} rows; sliced tensors must agree on dim 0 (or list it in 'whole')`);
    }
    if (opts.allReplicas && rows < this.replicas.length) {
      throw new RuntimeError('bad_message', `group '${this.role}'.call('${method}'): ${rows} row(s) for ${this.replicas.length} replicas; every replica of a training call must get a row (the gradient all-reduce waits for all of them)`);
    }
    const calls: Promise<CallResult>[] = [];
    for (let i = 0; i < this.replicas.length; i++) {
      const [a, b] = shardRange(rows, this.replicas.length, i);
      if (a === b) continue;
      const part: Tensors = {};
      for (const [n, t] of Object.entries(tensors)) part[n] = whole.has(n) ? t : sliceRows(t, a, b);
      calls.push(this.replicas[i].call(method, { meta: payload.meta, tensors: part }, opts));
    }
    return gather(this.role, method, await Promise.all(calls));
  }

  /** The same payload to every replica (save, load, sync); replies in replica order. */
  broadcast(method: string, payload: Payload = {}, opts: CallOptions = {}): Promise<CallResult[]> {
    return Promise.all(this.replicas.map((r) => r.call(method, payload, opts)));
  }
}

function gather(role: string, method: string, replies: CallResult[]): GroupResult {
  const names = Object.keys(replies[0]?.tensors ?? {});
  const tensors: Tensors = {};
  for (const n of names) {
    const parts = replies.map((r, i) => {
      const t = r.tensors[n];
      if (!t) throw new RuntimeError('bad_message', `group '${role}'.call('${method}'): a replica's reply lacks tensor '${n}' (reply ${i})`);
      return t;
    });
    tensors[n] = concatRows(`${role}.${method} reply '${n}'`, parts);
  }
  const metrics: Metrics = {};
  for (const r of replies) for (const [k, v] of Object.entries(r.metrics)) metrics[k] = (metrics[k] ?? 0) + v;
  for (const k of Object.keys(metrics)) metrics[k] /= replies.length;
  return { meta: {}, tensors, metrics, replies };
}

/** A role served inside this process: same interface and error values as a role process. */
export function inProcessRole(role: string, replica: number, setup: RoleSetup): RoleHandle {
  const methods: Record<string, Method> = { ping: () => ({ meta: { pid: process.pid } }), ...setup.methods };
  return {
    role,
    replica,
    async call(method, payload = {}, opts = {}) {
      const fn = Object.hasOwn(methods, method) ? methods[method] : undefined;
      if (!fn) throw new RuntimeError('unknown_method', `role '${role}' has no method '${method}' (has ${Object.keys(methods).join(', ')})`);
      const run = (async () => {
        try {
          return (await fn({ method, meta: payload.meta ?? {}, tensors: payload.tensors ?? {}, timeoutMs: opts.timeoutMs })) ?? {};
        } catch (e) {
          if (e instanceof RuntimeError) throw e;
          throw new RuntimeError('method_failed', `${method}: ${e instanceof Error ? e.message : String(e)}`);
        }
      })();
      let timer: NodeJS.Timeout | undefined;
      const r = await (opts.timeoutMs === undefined ? run : Promise.race([run, new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RuntimeError('timeout', `${role}/${replica}.${method}: no reply within ${opts.timeoutMs} ms`, true)), opts.timeoutMs);
      })]).finally(() => clearTimeout(timer)));
      return { meta: r.meta ?? {}, tensors: r.tensors ?? {}, metrics: r.metrics ?? {} };
    },
  };
}

/** Roles from in-process setups, e.g. inProcessRoles({ reward: [setup] }), for tests and single-process runs. */
export function inProcessRoles(roles: Record<string, RoleSetup[]>): Roles {
  const groups = new Map(Object.entries(roles).map(([name, setups]) => [name, new RoleGroup(name, setups.map((s, i) => inProcessRole(name, i, s)))]));
  return {
    roleNames: () => [...groups.keys()],
    group(role) {
      const g = groups.get(role);
      if (!g) throw new RuntimeError('role_missing', `no role '${role}' (have ${[...groups.keys()].join(', ') || 'none'})`);
      return g;
    },
    role(role, replica) {
      const r = this.group(role).replicas[replica];
      if (!r) throw new RuntimeError('role_missing', `role '${role}' has no replica ${replica}`);
      return r;
    },
  };
}
