// Gradient averaging across the replicas of one trainable group
// (ARCHITECTURE.md §1), over ZeroMQ. On one machine replica 0 binds a ROUTER
// on the group's ipc path and the others connect DEALERs; in each reduction
// every other replica sends its buffers to replica 0 as raw frames. A group
// whose replicas are not all on the coordinator's machine reduces through a
// relay in the coordinator instead (tcp with the run's CURVE keys, which
// every machine of the run can already reach), and every replica, replica 0
// included, sends to it. Either way the buffers are added up in the fixed
// order replica 0, 1, 2, ... (in double precision), divided by the group
// size, and the same float32 result goes back to all, so every replica ends
// with the very same bits whatever the arrival order.
//
// What it computes is the plain mean of the replicas' gradients, as
// DeepSpeed's data-parallel all-reduce does: it equals the gradient of the
// whole batch when every replica's loss averages over as many tokens.
//
// Every replica of the group must take part in every reduction: one that
// never arrives fails the reduction on the others after `timeoutMs`, naming
// it. A restarted replica (its count of reductions starts over) fails the
// next reduction: its weights are no longer the group's.
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import * as zmq from 'zeromq';
import { LOCAL_NODE, type Placement, type ReplicaPlan } from './placement.js';
import type { CurveClientKeys } from './startup.js';

/** What a replica is told about its group's collective (its start-up `args.collective`). */
export interface CollectiveSpec {
  /** The group's role name, for errors. */
  group: string;
  /** Number of replicas taking part. */
  size: number;
  /**
   * ipc://: the path replica 0 binds (the group is on the coordinator's
   * machine); tcp://: the coordinator's relay, as this replica reaches it.
   */
  endpoint: string;
  /** tcp only: the CURVE keys to connect to the relay with. */
  curve?: CurveClientKeys;
  /** How long replica 0 waits for the others in one reduction (they wait twice as long for its answer). */
  timeoutMs: number;
}

/** Ten minutes, as the runtime's default call deadline: replicas may finish their shards at quite different times. */
export const COLLECTIVE_TIMEOUT_MS = 600_000;

/** Where each replica of a group across machines reaches its relay. */
export type RelayAddress = (role: string, plan: ReplicaPlan) => { endpoint: string; curve: CurveClientKeys };

/** True when the group needs the coordinator's relay: some replica is not on the coordinator's machine. */
export function needsRelay(plans: readonly ReplicaPlan[]): boolean {
  return plans.length > 1 && plans.some((p) => p.node !== LOCAL_NODE);
}

/**
 * The placement with `args.collective` set on every replica of every group of
 * more than one replica: an ipc path in the run's socket folder (short, unique
 * per run and group) for a group on this machine, the relay's address
 * (`relay`, which must then be given) for a group across machines. Roles that
 * train open it; the others ignore it.
 */
export function withCollectives(placement: Placement, sockDir: string, timeoutMs = COLLECTIVE_TIMEOUT_MS, relay?: RelayAddress): Placement {
  const roles: Placement['roles'] = {};
  Object.entries(placement.roles).forEach(([role, plans], g) => {
    if (plans.length < 2) return void (roles[role] = plans);
    if (needsRelay(plans) && !relay) throw new Error(`collective '${role}': its replicas span machines, and no relay address was given`);
    // Numbered, not named: role names of 32 characters would push the path past the ~107-byte limit.
    const local = `ipc://${join(sockDir, `g${g}.sock`)}`;
    roles[role] = plans.map((p) => {
      const where = needsRelay(plans) ? relay!(role, p) : { endpoint: local };
      const spec: CollectiveSpec = { group: role, size: plans.length, ...where, timeoutMs };
      return { ...p, args: { ...p.args, collective: spec } };
    });
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
  if (typeof s.endpoint !== 'string' || !/^(ipc|tcp):\/\/./.test(s.endpoint)) throw bad('endpoint', 'an ipc:// or tcp:// endpoint');
  const c = s.curve;
  if (s.endpoint.startsWith('tcp://') && (!c || typeof c !== 'object' || !['serverKey', 'publicKey', 'secretKey'].every((k) => typeof (c as unknown as Record<string, unknown>)[k] === 'string')))
    throw bad('curve', 'the CURVE keys {serverKey, publicKey, secretKey} of a tcp endpoint');
  if (typeof s.timeoutMs !== 'number' || !(s.timeoutMs > 0)) throw bad('timeoutMs', 'a number of ms > 0');
  return { group: s.group, size: s.size!, endpoint: s.endpoint, ...(c && { curve: c }), timeoutMs: s.timeoutMs };
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
  // Through the coordinator's relay every replica is a member; on one machine replica 0 reduces.
  return rank === 0 && spec.endpoint.startsWith('ipc://') ? Root.open(spec) : new Member(spec, rank);
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
  if (srcs.length === 2) {
    // The usual pair, in one pass: the same double operations in the same order, so the same bits (2.5x faster here).
    const [x, y] = srcs;
    for (let i = 0; i < out.length; i++) out[i] = (x[i] + y[i]) / 2;
    return;
  }
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

interface Gathered {
  /** Each rank's buffers (the gatherer's own at its rank, if it has any). */
  parts: Float32Array[][];
  /** Who sent each rank's buffers, to send the result back. */
  from: { id: Buffer; seq: number }[];
  sizes: number[];
}

/**
 * One reduction's gathering on the ROUTER of replica 0 or of the relay:
 * waits for a message from every rank in `ranks`, checks each against the
 * reduction number and the buffer sizes (`sizes`, or those of the first
 * arrival), and on any failure tells the replicas already waiting and throws.
 */
async function gather(sock: zmq.Router, o: {
  group: string; size: number; seq: number; ranks: number[]; timeoutMs: number; failed: Set<number>;
  /** The gatherer's own buffers (replica 0); null for the relay. */
  own: Float32Array[] | null;
  /** The relay waits for a reduction's first message without a deadline. */
  waitForFirst: boolean;
}): Promise<Gathered> {
  const { group, size, seq } = o;
  const parts: Float32Array[][] = o.own ? [o.own] : [];
  let sizes: number[] | null = o.own ? o.own.map((b) => b.length) : null;
  const from: { id: Buffer; seq: number }[] = [];
  const fail = async (message: string): Promise<never> => {
    o.failed.add(seq);
    const error = `collective '${group}' (reduction ${seq}): ${message}`;
    // Replicas already waiting hear it now rather than at their own deadline.
    for (const f of from) if (f) await sock.send([f.id, pack({ seq: f.seq, rank: -1, sizes: [], error } satisfies Header)]).catch(() => {});
    throw new Error(error);
  };
  let deadline = o.waitForFirst ? Infinity : Date.now() + o.timeoutMs;
  let got = 0;
  while (got < o.ranks.length) {
    let frames: Buffer[];
    try {
      sock.receiveTimeout = deadline === Infinity ? -1 : Math.max(1, deadline - Date.now());
      frames = await sock.receive();
    } catch (e) {
      if (!isTimeout(e)) throw e;
      const missing = o.ranks.filter((r) => !parts[r]);
      return fail(`replica${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not arrive within ${o.timeoutMs} ms`);
    }
    const [id, head, ...data] = frames;
    let h: Header;
    try {
      h = unpack(head) as Header;
    } catch {
      continue; // not one of ours (a peer that passed CURVE but speaks something else): the run's own replicas are unaffected
    }
    if (h.seq < seq && o.failed.has(h.seq)) continue; // late for a reduction that already failed
    if (deadline === Infinity) deadline = Date.now() + o.timeoutMs;
    if (!Number.isSafeInteger(h.rank) || !o.ranks.includes(h.rank) || parts[h.rank]) return fail(`unexpected message from replica ${h.rank}`);
    from[h.rank] = { id, seq: h.seq };
    // A replica's count starts over when it is restarted, and then its weights are not the group's any more.
    if (h.seq !== seq)
      return fail(`replica ${h.rank} is at reduction ${h.seq}: ${h.seq < seq ? `replica ${h.rank}` : o.own ? 'replica 0' : 'another replica'} was restarted, and the replicas' weights no longer agree (restart the group from a checkpoint)`);
    sizes ??= h.sizes;
    if (h.sizes.length !== sizes.length || h.sizes.some((n, i) => n !== sizes![i]) || data.length !== sizes.length)
      return fail(`replica ${h.rank} sent ${h.sizes.length} buffers of [${h.sizes}] elements, the group has ${sizes.length} of [${sizes}]`);
    const short = data.findIndex((f, i) => f.byteLength !== sizes![i] * 4);
    if (short >= 0) return fail(`replica ${h.rank}'s buffer ${short} has ${data[short].byteLength} bytes, expected ${sizes[short] * 4}`);
    parts[h.rank] = data.map(f32Of);
    got++;
  }
  if (size !== parts.filter(Boolean).length) throw new Error(`collective '${group}': gathered ${parts.length} of ${size}`);
  return { parts, from, sizes: sizes! };
}

async function sendResult(sock: zmq.Router, group: string, seq: number, to: { id: Buffer }[], ranks: number[], sizes: number[], result: Buffer[]): Promise<void> {
  const head = pack({ seq, rank: -1, sizes } satisfies Header);
  for (const r of ranks) {
    await sock.send([to[r].id, head, ...result]).catch((e: Error) => {
      throw new Error(`collective '${group}' (reduction ${seq}): replica ${r} left before it got the mean (${e.message})`);
    });
  }
}

/** Replica 0 on one machine: gathers, reduces in replica order, sends the result to all. */
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
      await sock.bind(spec.endpoint);
    } catch (e) {
      sock.close();
      throw new Error(`collective '${spec.group}': replica 0 could not bind ${spec.endpoint}: ${(e as Error).message}`);
    }
    return new Root(spec, sock);
  }

  async allReduceMean(buffers: Float32Array[]): Promise<void> {
    const seq = ++this.seq;
    const { group, size, timeoutMs } = this.spec;
    const others = [...Array(size).keys()].slice(1);
    const g = await gather(this.sock, { group, size, seq, ranks: others, timeoutMs, failed: this.failed, own: buffers, waitForFirst: false });
    const result: Buffer[] = buffers.map((out, j) => {
      meanInto(out, g.parts.map((p) => p[j]));
      // A copy: zeromq may still read the frame after send() resolves, and the trainer clips the gradients in place.
      return Buffer.from(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
    });
    await sendResult(this.sock, group, seq, g.from, others, g.sizes, result);
  }

  close(): void {
    this.sock.close();
  }
}

/**
 * The coordinator's relay for one group across machines: a ROUTER on the
 * coordinator's tcp address (CURVE, the run's keys, checked by the
 * coordinator's ZAP domain) that gathers every replica's buffers, reduces
 * them in replica order and sends the mean back to all, one reduction after
 * another, until closed.
 */
export class Relay {
  private seq = 0;
  private readonly failed = new Set<number>();
  private readonly done: Promise<void>;

  private constructor(readonly group: string, readonly size: number, private readonly timeoutMs: number, private readonly sock: zmq.Router,
    private readonly address: string, readonly port: number, private readonly note: (line: string) => void) {
    this.done = this.serve();
  }

  /** Binds `tcp://HOST:PORT` (HOST as the coordinator listens; PORT '*' for any free one) and starts serving. */
  static async open(o: { group: string; size: number; timeoutMs?: number; host: string; port: number | '*'; secretKey: string; zapDomain: string; note: (line: string) => void }): Promise<Relay> {
    const sock = new zmq.Router({ linger: 2000, mandatory: true, handover: true, curveServer: true, curveSecretKey: o.secretKey, zapDomain: o.zapDomain });
    const at = `tcp://${o.host}:${o.port}`;
    try {
      await sock.bind(at);
    } catch (e) {
      sock.close();
      throw new Error(`collective '${o.group}': the relay could not bind ${at} (${(e as Error).message})`);
    }
    const address = sock.lastEndpoint!;
    return new Relay(o.group, o.size, o.timeoutMs ?? COLLECTIVE_TIMEOUT_MS, sock, address, Number(/:(\d+)$/.exec(address)![1]), o.note);
  }

  private async serve(): Promise<void> {
    const ranks = [...Array(this.size).keys()];
    while (!this.sock.closed) {
      const seq = ++this.seq;
      try {
        const g = await gather(this.sock, { group: this.group, size: this.size, seq, ranks, timeoutMs: this.timeoutMs, failed: this.failed, own: null, waitForFirst: true });
        // Into replica 0's received frames: they are this relay's own memory.
        const result = g.parts[0].map((out, j) => {
          meanInto(out, g.parts.map((p) => p[j]));
          return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
        });
        await sendResult(this.sock, this.group, seq, g.from, ranks, g.sizes, result);
      } catch (e) {
        if (this.sock.closed) return;
        // The replicas heard it too; the group goes on with the next reduction (or its run fails).
        this.note((e as Error).message);
      }
    }
  }

  /** Stops serving; resolves once the port is free again. */
  async close(): Promise<void> {
    await this.sock.unbind(this.address).catch(() => {});
    this.sock.close();
    await this.done;
  }
}

/** Replicas 1..N-1 on one machine, or every replica through the relay: send the buffers, wait for the mean. */
class Member implements Collective {
  private seq = 0;
  private readonly sock: zmq.Dealer;

  constructor(private readonly spec: CollectiveSpec, readonly rank: number) {
    const c = spec.curve;
    this.sock = new zmq.Dealer({ linger: 0, routingId: `r${rank}`, ...(c && { curveServerKey: c.serverKey, curvePublicKey: c.publicKey, curveSecretKey: c.secretKey }) });
    this.sock.connect(spec.endpoint);
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
        throw new Error(`collective '${this.spec.group}' (reduction ${seq}): replica ${this.rank} got no result from ${this.spec.endpoint.startsWith('tcp://') ? 'the coordinator\'s relay' : 'replica 0'} within ${waitMs} ms (is it alive?)`);
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
