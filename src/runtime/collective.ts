// Gradient averaging across the replicas of one trainable group
// (ARCHITECTURE.md §1), on one machine over ZeroMQ: replica 0 binds a ROUTER
// on the group's ipc path and the others connect DEALERs. In each reduction
// every other replica sends its buffers to replica 0 as raw frames; replica 0
// adds them up in the fixed order replica 0, 1, 2, ... (in double precision),
// divides by the group size and sends the same float32 result back to all,
// so every replica ends with the very same bits whatever the arrival order.
//
// What it computes is the plain mean of the replicas' gradients, as
// DeepSpeed's data-parallel all-reduce does: it equals the gradient of the
// whole batch when every replica's loss averages over as many tokens.
//
// Every replica of the group must take part in every reduction: one that
// never arrives fails the reduction on the others after `timeoutMs`, naming
// it. A restarted replica (its count of reductions starts over) fails the
// next reduction: its weights are no longer the group's. Groups whose
// replicas are not all on the coordinator's machine get no endpoint yet
// (collectives across machines are not supported), and opening their
// collective fails saying so.
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import * as zmq from 'zeromq';
import { LOCAL_NODE, type Placement } from './placement.js';

/** What a replica is told about its group's collective (its start-up `args.collective`). */
export interface CollectiveSpec {
  /** The group's role name, for errors. */
  group: string;
  /** Number of replicas taking part. */
  size: number;
  /** The ipc:// endpoint replica 0 binds; null when the group spans machines (not supported yet). */
  endpoint: string | null;
  /** How long replica 0 waits for the others in one reduction (they wait twice as long for its answer). */
  timeoutMs: number;
}

/** Ten minutes, as the runtime's default call deadline: replicas may finish their shards at quite different times. */
export const COLLECTIVE_TIMEOUT_MS = 600_000;

/**
 * The placement with `args.collective` set on every replica of every group of
 * more than one replica: an ipc path in the run's socket folder (short, unique
 * per run and group). Roles that train open it; the others ignore it.
 */
export function withCollectives(placement: Placement, sockDir: string, timeoutMs = COLLECTIVE_TIMEOUT_MS): Placement {
  const roles: Placement['roles'] = {};
  Object.entries(placement.roles).forEach(([role, plans], g) => {
    if (plans.length < 2) return void (roles[role] = plans);
    const local = plans.every((p) => p.node === LOCAL_NODE);
    // Numbered, not named: role names of 32 characters would push the path past the ~107-byte limit.
    const spec: CollectiveSpec = { group: role, size: plans.length, endpoint: local ? `ipc://${join(sockDir, `g${g}.sock`)}` : null, timeoutMs };
    roles[role] = plans.map((p) => ({ ...p, args: { ...p.args, collective: spec } }));
  });
  return { roles };
}

/** Reads `args.collective`; undefined means the replica is alone. Throws naming the field. */
export function parseCollectiveSpec(where: string, v: unknown): CollectiveSpec | null {
  if (v === undefined || v === null) return null;
  const s = v as Partial<CollectiveSpec>;
  const bad = (field: string, want: string) => new Error(`${where}: args.collective.${field} must be ${want}, got ${JSON.stringify((s as Record<string, unknown>)[field])}`);
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: args.collective must be an object, got ${JSON.stringify(v)}`);
  if (typeof s.group !== 'string' || !s.group) throw bad('group', 'the group name');
  if (!Number.isSafeInteger(s.size) || s.size! < 1) throw bad('size', 'an integer >= 1');
  if (s.endpoint !== null && (typeof s.endpoint !== 'string' || !s.endpoint.startsWith('ipc://'))) throw bad('endpoint', 'an ipc:// endpoint or null');
  if (typeof s.timeoutMs !== 'number' || !(s.timeoutMs > 0)) throw bad('timeoutMs', 'a number of ms > 0');
  return { group: s.group, size: s.size!, endpoint: s.endpoint, timeoutMs: s.timeoutMs };
}

export interface Collective {
  readonly size: number;
  readonly rank: number;
  /** Replaces every buffer, in place, with its mean over the group's replicas (the same buffers, in the same order, on each). */
  allReduceMean(buffers: Float32Array[]): Promise<void>;
  close(): void;
}

/** Opens replica `rank`'s end of the group's collective; a group of one needs no sockets. */
export async function openCollective(spec: CollectiveSpec, rank: number): Promise<Collective> {
  if (!Number.isSafeInteger(rank) || rank < 0 || rank >= spec.size) throw new Error(`collective '${spec.group}': replica ${rank} is outside the group of ${spec.size}`);
  if (spec.size === 1) return { size: 1, rank: 0, allReduceMean: async () => {}, close: () => {} };
  if (spec.endpoint === null)
    throw new Error(`collective '${spec.group}': its ${spec.size} replicas are not all on the coordinator's machine, and gradient averaging across machines is not supported yet (place the group on 'local')`);
  return rank === 0 ? Root.open(spec) : new Member(spec, rank);
}

interface Header {
  /** Reduction number, counted by each replica from 1: a late message from a failed reduction is told apart. */
  seq: number;
  rank: number;
  /** Element counts of the buffers. */
  sizes: number[];
  /** Set by replica 0 instead of a result when the reduction failed. */
  error?: string;
}

/** A Float32Array over a received frame (copied when the frame is not 4-byte aligned). */
function f32Of(frame: Buffer): Float32Array {
  if (frame.byteOffset % 4 === 0) return new Float32Array(frame.buffer, frame.byteOffset, frame.byteLength / 4);
  return new Float32Array(new Uint8Array(frame).buffer);
}

const CHUNK = 1 << 16;
const acc = new Float64Array(CHUNK);

/**
 * out[i] = (srcs[0][i] + srcs[1][i] + ...) / srcs.length, added in that order
 * in double precision and rounded once. A chunk at a time through a double
 * accumulator: flat loops run several times faster than one over replicas per element.
 * `out` may be srcs[0].
 */
function meanInto(out: Float32Array, srcs: Float32Array[]): void {
  for (let a = 0; a < out.length; a += CHUNK) {
    const n = Math.min(CHUNK, out.length - a);
    const first = srcs[0];
    for (let i = 0; i < n; i++) acc[i] = first[a + i];
    for (let r = 1; r < srcs.length; r++) {
      const src = srcs[r];
      for (let i = 0; i < n; i++) acc[i] += src[a + i];
    }
    for (let i = 0; i < n; i++) out[a + i] = acc[i] / srcs.length;
  }
}

function isTimeout(e: unknown): boolean {
  return (e as { code?: string }).code === 'EAGAIN';
}

/** Replica 0: gathers, reduces in replica order, sends the result to all. */
class Root implements Collective {
  readonly rank = 0;
  private seq = 0;
  private readonly failed = new Set<number>();

  private constructor(private readonly spec: CollectiveSpec, private readonly sock: zmq.Router) {}

  get size(): number {
    return this.spec.size;
  }

  static async open(spec: CollectiveSpec): Promise<Root> {
    // linger: the last results still go out when the replica closes right after a reduction;
    // handover: a restarted replica's connection replaces its predecessor's (same routing id).
    const sock = new zmq.Router({ linger: 2000, mandatory: true, handover: true });
    try {
      await sock.bind(spec.endpoint!);
    } catch (e) {
      sock.close();
      throw new Error(`collective '${spec.group}': replica 0 could not bind ${spec.endpoint}: ${(e as Error).message}`);
    }
    return new Root(spec, sock);
  }

  async allReduceMean(buffers: Float32Array[]): Promise<void> {
    const seq = ++this.seq;
    const { group, size } = this.spec;
    const sizes = buffers.map((b) => b.length);
    const parts: Float32Array[][] = [buffers];
    // Who has written, and the reduction number each sent (echoed in an error so that it is not taken for a stale one).
    const from: { id: Buffer; seq: number }[] = [];
    const fail = async (message: string): Promise<never> => {
      this.failed.add(seq);
      const error = `collective '${group}' (reduction ${seq}): ${message}`;
      // Replicas already waiting hear it now rather than at their own deadline.
      for (const f of from) if (f) await this.sock.send([f.id, pack({ seq: f.seq, rank: 0, sizes: [], error } satisfies Header)]).catch(() => {});
      throw new Error(error);
    };
    const deadline = Date.now() + this.spec.timeoutMs;
    while (parts.filter(Boolean).length < size) {
      let frames: Buffer[];
      try {
        this.sock.receiveTimeout = Math.max(1, deadline - Date.now());
        frames = await this.sock.receive();
      } catch (e) {
        if (!isTimeout(e)) throw e;
        const missing = [...Array(size).keys()].filter((r) => !parts[r]);
        return fail(`replica${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not arrive within ${this.spec.timeoutMs} ms`);
      }
      const [id, head, ...data] = frames;
      const h = unpack(head) as Header;
      if (h.seq < seq && this.failed.has(h.seq)) continue; // late for a reduction that already failed
      if (!Number.isSafeInteger(h.rank) || h.rank < 1 || h.rank >= size || parts[h.rank]) return fail(`unexpected message from replica ${h.rank}`);
      from[h.rank] = { id, seq: h.seq };
      // A replica's count starts over when it is restarted, and then its weights are not the group's any more.
      if (h.seq !== seq)
        return fail(`replica ${h.rank} is at reduction ${h.seq}: replica ${h.seq < seq ? h.rank : 0} was restarted, and the replicas' weights no longer agree (restart the group from a checkpoint)`);
      if (h.sizes.length !== sizes.length || h.sizes.some((n, i) => n !== sizes[i]) || data.length !== sizes.length)
        return fail(`replica ${h.rank} sent ${h.sizes.length} buffers of [${h.sizes}] elements, replica 0 has ${sizes.length} of [${sizes}]`);
      const short = data.findIndex((f, i) => f.byteLength !== sizes[i] * 4);
      if (short >= 0) return fail(`replica ${h.rank}'s buffer ${short} has ${data[short].byteLength} bytes, expected ${sizes[short] * 4}`);
      parts[h.rank] = data.map(f32Of);
    }
    const result: Buffer[] = buffers.map((out, j) => {
      meanInto(out, parts.map((p) => p[j]));
      // A copy: zeromq may still read the frame after send() resolves, and the trainer clips the gradients in place.
      return Buffer.from(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
    });
    const head = pack({ seq, rank: 0, sizes } satisfies Header);
    for (let r = 1; r < size; r++) {
      await this.sock.send([from[r].id, head, ...result]).catch((e: Error) => {
        throw new Error(`collective '${group}' (reduction ${seq}): replica ${r} left before it got the mean (${e.message})`);
      });
    }
  }

  close(): void {
    this.sock.close();
  }
}

/** Replicas 1..N-1: send to replica 0, wait for the mean. */
class Member implements Collective {
  private seq = 0;
  private readonly sock: zmq.Dealer;

  constructor(private readonly spec: CollectiveSpec, readonly rank: number) {
    this.sock = new zmq.Dealer({ linger: 0, routingId: `r${rank}` });
    this.sock.connect(spec.endpoint!);
  }

  get size(): number {
    return this.spec.size;
  }

  async allReduceMean(buffers: Float32Array[]): Promise<void> {
    const seq = ++this.seq;
    const sizes = buffers.map((b) => b.length);
    // Copies: if replica 0 is gone the message may wait in zeromq's queue after the trainer has dropped these gradients.
    await this.sock.send([pack({ seq, rank: this.rank, sizes } satisfies Header), ...buffers.map((b) => Buffer.from(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)))]);
    // Twice replica 0's wait: it keeps the deadline and tells everyone which replica is missing.
    const waitMs = 2 * this.spec.timeoutMs;
    const deadline = Date.now() + waitMs;
    for (;;) {
      let frames: Buffer[];
      try {
        this.sock.receiveTimeout = Math.max(1, deadline - Date.now());
        frames = await this.sock.receive();
      } catch (e) {
        if (!isTimeout(e)) throw e;
        throw new Error(`collective '${this.spec.group}' (reduction ${seq}): replica ${this.rank} got no result from replica 0 within ${waitMs} ms (is replica 0 alive?)`);
      }
      const [head, ...data] = frames;
      const h = unpack(head) as Header;
      if (h.seq < seq) continue; // the answer to a reduction this replica already gave up on
      if (h.error) throw new Error(h.error);
      if (h.seq !== seq || data.length !== buffers.length) throw new Error(`collective '${this.spec.group}': replica ${this.rank} got a reply for reduction ${h.seq} with ${data.length} buffers, expected reduction ${seq} with ${buffers.length}`);
      data.forEach((f, i) => buffers[i].set(f32Of(f)));
      return;
    }
  }

  close(): void {
    this.sock.close();
  }
}
