// The runtime's router: the registry of role replicas, remote nodes and
// connected peers, the ROUTER sockets, and calls — each request sent to the
// replica's current process, its reply or error matched back, and a call
// that failed because its role died sent again once the supervisor has the
// role back. What to do about dead, hung or slow roles is the supervisor's
// (src/runtime/supervisor.ts); the router only reports what it sees.
import * as zmq from 'zeromq';
import { RoleGroup, type CallOptions, type CallResult, type Payload, type RoleHandle, type Roles } from './handles.js';
import type { ResolvedOptions } from './options.js';
import { FaultInjector } from './faults.js';
import { decode, encode, RuntimeError, type Header, type Message, type Meta } from './protocol.js';
import { failAll, settle, waitReady, type Endpoint, type Pending, type Peer, type RemoteNode, type Replica } from './records.js';
import { SendQueue, SOCKET_BUFFER_BYTES } from './send-queue.js';

/** What the router hands to the supervisor. */
export interface RouterHooks {
  /** A replica's process said hello: rebuild its state or let it serve. */
  connected(rep: Replica): void;
  nodeJoined(node: RemoteNode): void;
  /** A node agent's own message (its roles' output and exits, bye). */
  nodeMessage(node: RemoteNode, m: Message): void;
  /** The replica's process is dead, hung or unreachable. */
  down(rep: Replica, why: string): void;
  /** The deadline of a call of `method` (ms; 0: none) when the caller gave none. */
  deadlineFor(rep: Replica, method: string): number;
  /** A call was answered (for the replay log and measured durations). */
  answered(rep: Replica, method: string, payload: Payload, r: CallResult, seq: number, ms: number): void;
}

/** Shared by the router and the supervisor: the run's options, its fate and its log. */
export interface RunContext {
  opts: ResolvedOptions;
  failed: RuntimeError | null;
  closing: boolean;
  note(line: string): void;
}

/** Refusals logged per source in each 10 s window; the rest are counted. */
const REFUSALS_LOGGED = 5;
const REFUSAL_WINDOW_MS = 10_000;

export class Router implements Roles {
  readonly endpoints: Endpoint[] = [];
  readonly peers = new Map<string, Peer>();
  readonly roles = new Map<string, Replica[]>();
  readonly nodes = new Map<string, RemoteNode>();
  hooks!: RouterHooks;
  private nextId = 0;
  private readonly refusals = new Map<string, { since: number; logged: number; dropped: number }>();
  private readonly faults: FaultInjector;

  constructor(private readonly ctx: RunContext) {
    this.faults = new FaultInjector(ctx.opts.faults, ctx.note);
  }

  /** Binds a ROUTER at `address` and starts receiving on it. */
  async bind(address: string, curve?: { secretKey: string; zapDomain: string }): Promise<Endpoint> {
    const sock = new zmq.Router({
      linger: 0, mandatory: true, sendBufferSize: SOCKET_BUFFER_BYTES, receiveBufferSize: SOCKET_BUFFER_BYTES,
      // ZeroMQ drops a peer that sends more, before any of it reaches us: no hello needed to be refused.
      maxMessageSize: this.ctx.opts.maxMessageBytes,
      ...(curve && { curveServer: true, curveSecretKey: curve.secretKey, zapDomain: curve.zapDomain }),
    });
    await sock.bind(address);
    const ep: Endpoint = { sock, out: new SendQueue(sock), index: this.endpoints.length, address: sock.lastEndpoint ?? address };
    this.endpoints.push(ep);
    void this.receive(ep);
    return ep;
  }

  // ---- the Roles interface ----

  roleNames(): string[] {
    return [...this.roles.keys()];
  }

  group(role: string): RoleGroup {
    return new RoleGroup(role, this.replicasOf(role).map((r) => r.handle));
  }

  role(role: string, replica: number): RoleHandle {
    const r = this.replicasOf(role)[replica];
    if (!r) throw new RuntimeError('role_missing', `role '${role}' has no replica ${replica} (it has ${this.replicasOf(role).length})`);
    return r.handle;
  }

  replicasOf(role: string): Replica[] {
    const r = this.roles.get(role);
    if (!r) throw new RuntimeError('role_missing', `no role '${role}' in this run (have ${this.roleNames().join(', ') || 'none'})`);
    return r;
  }

  replica(role: string, replica: number): Replica | undefined {
    return this.roles.get(role)?.[replica];
  }

  all(): Replica[] {
    return [...this.roles.values()].flat();
  }

  // ---- calls ----

  /**
   * A call that fails because its role died is sent again to the restarted
   * process, whose state the supervisor rebuilt first: every method gives the
   * same answer given the same state (seeds travel in meta). The restart
   * budget bounds the retries: a role out of restarts fails the run.
   */
  async call(rep: Replica, method: string, payload: Payload = {}, opts: CallOptions = {}): Promise<CallResult> {
    for (;;) {
      try {
        return await this.callOnce(rep, method, payload, opts, false);
      } catch (e) {
        const coming = rep.state === 'restarting' || rep.state === 'starting' || rep.state === 'rebuilding';
        if (!(e instanceof RuntimeError) || e.code !== 'role_died' || !coming || method === 'shutdown') throw e;
        rep.log.note(`'${method}' goes again to the restarted process`);
      }
    }
  }

  /** One attempt. `internal`: the supervisor's own call to a replica that is not serving yet. */
  async callOnce(rep: Replica, method: string, payload: Payload, opts: CallOptions, internal: boolean): Promise<CallResult> {
    const name = `${rep.plan.role}/${rep.plan.replica}`;
    const at = opts.step !== undefined ? ` at step ${opts.step}` : '';
    if (this.ctx.failed) throw this.ctx.failed;
    if (this.ctx.closing) throw new RuntimeError('shutting_down', `${name}.${method}: the runtime is shutting down`);
    const explicit = opts.timeoutMs;
    // A caller's own timeout counts from now; a method's deadline only from when the role has it.
    if (!internal && rep.state !== 'ready') await waitReady(rep, explicit ? Date.now() + explicit : Infinity);
    if (this.ctx.failed) throw this.ctx.failed;
    const limit = explicit ?? this.hooks.deadlineFor(rep, method);
    const id = ++this.nextId;
    const seq = ++rep.seq;
    const frames = encode({ kind: 'req', id, method, sender: 'coordinator', meta: payload.meta, timeout_ms: limit > 0 ? limit : undefined }, payload.tensors);
    const peer = rep.peer;
    if (!peer) throw new RuntimeError('role_died', `${name}.${method}: the process is gone`, true);
    rep.calls++;
    return new Promise<CallResult>((resolve, reject) => {
      const sent = Date.now();
      const p: Pending = {
        method, sent,
        reject: (e) => {
          // Whoever reports this error to the user can quote what the role said last.
          e.roleLog ??= { file: rep.log.file, lines: rep.log.lastLines(12) };
          reject(e);
        },
        resolve: (r) => {
          this.hooks.answered(rep, method, payload, r, seq, Date.now() - sent);
          resolve(r);
        },
      };
      if (limit > 0) {
        p.timer = setTimeout(() => {
          const waited = Date.now() - sent;
          if (explicit !== undefined) {
            if (!rep.pending.delete(id)) return;
            reject(new RuntimeError('timeout', `${name}.${method}${at}: no reply within ${explicit} ms`, true));
            // A role that is silent while it owes a reply past its deadline is hung.
            if (Date.now() - rep.lastHeard > this.ctx.opts.peerTimeoutMs) this.hooks.down(rep, `was silent for ${Date.now() - rep.lastHeard} ms and missed the deadline of '${method}'${at} (hung)`);
            return;
          }
          // The method's own deadline: alive but stuck. The supervisor replaces it and this call goes again.
          this.hooks.down(rep, `ran '${method}'${at} for ${(waited / 1000).toFixed(1)} s, past its deadline of ${(limit / 1000).toFixed(1)} s (stuck)`);
        }, limit);
      }
      rep.pending.set(id, p);
      if (method === 'shutdown') rep.state = 'stopped';
      if (!internal) this.faults.onSend(rep, method);
      peer.sock.out.send([peer.id, ...frames]).catch((e) => {
        if (!rep.pending.has(id)) return;
        // Its process is gone (an exit not yet reported): the supervisor restarts it.
        if (rep.state === 'ready' || rep.state === 'rebuilding') this.hooks.down(rep, `could not be reached: ${(e as Error).message}`);
        if (rep.pending.delete(id)) {
          clearTimeout(p.timer);
          reject(new RuntimeError('role_died', `${name}.${method}: could not send: ${(e as Error).message}`, true));
        }
      });
    });
  }

  /** A request to a node agent (spawn, kill), answered within `timeoutMs`. */
  nodeRequest(node: RemoteNode, method: string, meta: Meta, timeoutMs: number): Promise<Meta> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const p: Pending = { method, sent: Date.now(), resolve: (r) => resolve(r.meta), reject };
      p.timer = setTimeout(() => {
        node.pending.delete(id);
        reject(new RuntimeError('timeout', `node '${node.name}' did not answer '${method}' within ${timeoutMs} ms`, true));
      }, timeoutMs);
      node.pending.set(id, p);
      this.send(node.peer, { kind: 'req', id, method, meta });
    });
  }

  send(peer: Peer, h: Omit<Header, 'version' | 'sender'>): void {
    peer.sock.out.send([peer.id, ...encode({ ...h, sender: 'coordinator' })]).catch(() => {});
  }

  private reply(ep: Endpoint, id: Buffer, h: Omit<Header, 'version' | 'sender'>): void {
    ep.out.send([id, ...encode({ ...h, sender: 'coordinator' })]).catch(() => {});
  }

  /** Forgets every connection of the replica's process (its calls are the supervisor's to fail). */
  forgetPeer(rep: Replica): void {
    for (const [key, p] of this.peers) if (p.replica === rep) this.peers.delete(key);
    rep.peer = null;
    rep.beating = false;
  }

  // ---- receiving ----

  private async receive(ep: Endpoint): Promise<void> {
    try {
      for await (const [id, ...frames] of ep.sock) this.onFrames(ep, id, frames);
    } catch (e) {
      if (!ep.sock.closed) this.ctx.note(`receive on ${ep.address} failed: ${(e as Error).message}`);
    }
  }

  private onFrames(ep: Endpoint, id: Buffer, frames: Buffer[]): void {
    const key = `${ep.index}:${id.toString('hex')}`;
    const peer = this.peers.get(key);
    const now = Date.now();
    if (peer) {
      peer.lastHeard = now;
      if (peer.replica) peer.replica.lastHeard = now;
    }
    const d = decode(frames);
    if (!d.ok) {
      this.refused(peer?.name ?? `unidentified peers on ${ep.address}`, `refused a message from ${peer?.name ?? `unknown peer ${key}`}: ${d.error.code}: ${d.error.message}`);
      // A malformed reply fails its call at once rather than at the deadline.
      const rep = peer?.replica;
      const p = rep && d.id ? rep.pending.get(d.id) : undefined;
      if (rep && p) {
        rep.pending.delete(d.id);
        clearTimeout(p.timer);
        p.reject(new RuntimeError('bad_message', `${rep.plan.role}/${rep.plan.replica}.${p.method}: its reply was malformed: ${d.error.message}`, false));
      }
      return this.reply(ep, id, { kind: 'err', id: d.id, error: d.error.toValue() });
    }
    const m = d.msg;
    if (!peer) {
      if (m.kind === 'hello') return this.onHello(ep, id, key, m);
      this.refused(`unidentified peers on ${ep.address}`, `refused a '${m.kind}' from ${key} on ${ep.address}: it did not say hello`);
      if (m.kind === 'req') this.reply(ep, id, { kind: 'err', id: m.id, error: { code: 'not_hello', message: 'say hello first', retriable: false } });
      return;
    }
    if (peer.beatsOnly) return;
    if (peer.replica) return this.onRoleMessage(peer.replica, m);
    if (peer.node) return this.hooks.nodeMessage(peer.node, m);
  }

  private onHello(ep: Endpoint, id: Buffer, key: string, m: Message): void {
    const meta = m.meta ?? {};
    const { opts } = this.ctx;
    const refuse = (why: string, code: 'unexpected_peer' | 'shutting_down' = 'unexpected_peer') => {
      this.refused(`hellos on ${ep.address}`, `refused hello from ${m.sender} (${key} on ${ep.address}): ${why}`);
      this.reply(ep, id, { kind: 'err', id: m.id, error: { code, message: why, retriable: code === 'shutting_down' } });
    };
    const ready = () => this.reply(ep, id, { kind: 'ready', id: m.id, meta: { heartbeat_ms: opts.heartbeatMs, coordinator_timeout_ms: opts.coordinatorTimeoutMs } });
    const peer: Peer = { key, sock: ep, id, name: m.sender, lastHeard: Date.now() };
    if (meta.role === 'node') {
      const name = String(meta.name ?? '');
      if (ep.index === 0) return refuse('nodes join over tcp');
      // A node that rejoins for the next step may reach this coordinator before its socket is gone.
      if (this.ctx.closing) return refuse('this coordinator is shutting down; join the next one', 'shutting_down');
      if (this.nodes.has(name)) return refuse(`a node named '${name}' is already connected`);
      peer.node = { name, peer, info: meta, pending: new Map() };
      this.nodes.set(name, peer.node);
      this.peers.set(key, peer);
      this.ctx.note(`node '${name}' joined from ${meta.host} (pid ${meta.pid})`);
      ready();
      return this.hooks.nodeJoined(peer.node);
    }
    const rep = typeof meta.role === 'string' && Number.isSafeInteger(meta.replica) ? this.replica(meta.role, meta.replica as number) : undefined;
    if (!rep) return refuse(`no role ${JSON.stringify(meta.role)} replica ${JSON.stringify(meta.replica)} in this run`);
    // The token is new with every spawn: it alone says this is the process the supervisor started last.
    if (meta.token !== rep.token) return refuse(`${rep.plan.role}/${rep.plan.replica} is not expecting this process (its token is an earlier process's)`);
    if ((rep.plan.node === 'local') !== (ep.index === 0)) return refuse(`${rep.plan.role}/${rep.plan.replica} must connect on ${rep.plan.node === 'local' ? 'ipc' : 'tcp'}`);
    if (rep.state === 'stopped' || rep.state === 'failed') return refuse(`${rep.plan.role}/${rep.plan.replica} is ${rep.state}`, 'shutting_down');
    peer.replica = rep;
    this.peers.set(key, peer);
    rep.lastHeard = Date.now();
    if (meta.channel === 'heartbeat') {
      // The process's heartbeat thread: it proves the process runs while its main thread computes.
      peer.beatsOnly = true;
      rep.beating = true;
      return ready();
    }
    rep.peer = peer;
    // A role that beats from a thread of its own is watched while it computes, from its hello on.
    const caps = meta.capabilities as { heartbeat_thread?: unknown } | undefined;
    if (caps?.heartbeat_thread === true) rep.beating = true;
    if (typeof meta.pid === 'number' && meta.pid !== rep.pid && rep.plan.node === 'local') rep.log.note(`hello from pid ${meta.pid} (spawned ${rep.pid})`);
    ready();
    this.hooks.connected(rep);
  }

  private onRoleMessage(rep: Replica, m: Message): void {
    switch (m.kind) {
      case 'hb':
        return;
      case 'rep':
      case 'err':
        return settle(rep.pending, m); // no pending entry: a reply after its caller timed out
      case 'log':
        for (const l of asLines(m.meta?.lines)) rep.log.write(l);
        return;
      case 'bye':
        rep.log.note('said bye');
        return;
      default:
        this.refused(`${rep.plan.role}/${rep.plan.replica}`, `refused a '${m.kind}' from ${rep.plan.role}/${rep.plan.replica}: roles only answer`);
        if (m.kind === 'req') this.send(rep.peer!, { kind: 'err', id: m.id, error: { code: 'bad_message', message: 'roles do not send requests', retriable: false } });
    }
  }

  /** Logs a refusal, at most a few per source in each window; the rest are counted in one line. */
  private refused(source: string, line: string): void {
    const now = Date.now();
    let r = this.refusals.get(source);
    if (!r || now - r.since > REFUSAL_WINDOW_MS) {
      if (r && r.dropped > 0) this.ctx.note(`... and ${r.dropped} more refused messages from ${source} in ${((now - r.since) / 1000).toFixed(0)} s, not logged one by one`);
      // Bounded: a flood from ever-new peers shares one entry per endpoint anyway.
      if (this.refusals.size > 1000) this.refusals.clear();
      r = { since: now, logged: 0, dropped: 0 };
      this.refusals.set(source, r);
    }
    if (r.logged < REFUSALS_LOGGED) {
      r.logged++;
      this.ctx.note(line);
    } else r.dropped++;
  }

  /** Logs the counts of refusals not logged one by one (at shutdown). */
  flushRefusals(): void {
    for (const [source, r] of this.refusals)
      if (r.dropped > 0) this.ctx.note(`... and ${r.dropped} more refused messages from ${source} in ${((Date.now() - r.since) / 1000).toFixed(0)} s, not logged one by one`);
    this.refusals.clear();
  }

  /** Fails every call in flight, to roles and nodes (the run failed or is stopping). */
  failEverything(err: RuntimeError): void {
    for (const rep of this.all()) {
      failAll(rep.pending, err);
      for (const w of [...rep.waiters]) w.reject(err);
    }
    for (const node of this.nodes.values()) failAll(node.pending, err);
  }
}

export function asLines(x: unknown): string[] {
  return Array.isArray(x) ? x.map(String) : typeof x === 'string' ? [x] : [];
}
