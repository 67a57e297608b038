// The coordinator side of the runtime: binds the ROUTER(s), starts the plan's
// roles through the node agents (in-process for this machine, `quartet node`
// for others), tracks every peer, routes calls and replies, and supervises:
// heartbeats, hung and dead roles, restarts by policy, clean shutdown.
//
//   const rt = await startRuntime(planInput, { runDir });
//   const out = await rt.group('actor').call('generate', { tensors: { prompts } });
//   await rt.shutdown();
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as zmq from 'zeromq';
import { NodeAgent, type ExitInfo } from './agent.js';
import { COLLECTIVE_TIMEOUT_MS, needsRelay, Relay, type RelayAddress, withCollectives } from './collective.js';
import { allowClients, forgetClients, generateRunKeys, writeNodeKeys, type RunKeys } from './curve.js';
import { RoleGroup, type CallOptions, type CallResult, type Payload, type RoleHandle, type Roles } from './handles.js';
import { resolveOptions, type ResolvedOptions, type RuntimeOptions } from './options.js';
import { LOCAL_NODE, planPlacement, type Placement, type PlanInput, type ReplicaPlan } from './placement.js';
import { decode, encode, RuntimeError, type Header, type Message, type Meta } from './protocol.js';
import { failAll, newReplica, settle, waitReady, type Endpoint, type Pending, type Peer, type RemoteNode, type Replica, type ReplicaStats } from './records.js';
import { RoleLog } from './role-log.js';
import { SendQueue, SOCKET_BUFFER_BYTES } from './send-queue.js';

let runCounter = 0;

export type { ReplicaStats } from './records.js';

export class Coordinator implements Roles {
  readonly runDir: string;
  readonly ipcEndpoint: string;
  /** Set when `listen` was given: the endpoint other machines join. */
  tcpEndpoint: string | null = null;
  /** Set when `listen` was given: the file another machine's `quartet node --keys` needs. */
  nodeKeysFile: string | null = null;
  /** Resolves with the error when the run fails (a role out of restarts, a node lost). */
  readonly failure: Promise<RuntimeError>;

  private readonly opts: ResolvedOptions;
  private readonly sockDir: string;
  private readonly endpoints: Endpoint[] = [];
  private readonly peers = new Map<string, Peer>();
  private readonly roles = new Map<string, Replica[]>();
  private readonly nodes = new Map<string, RemoteNode>();
  private readonly nodeWaiters = new Set<() => void>();
  private readonly agent: NodeAgent;
  private readonly coordLog: string;
  private readonly zapDomain = `quartet-${process.pid}-${++runCounter}`;
  private keys: RunKeys | null = null;
  private readonly relays: Relay[] = [];
  private nextId = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastTick = Date.now();
  private failed: RuntimeError | null = null;
  private setFailure!: (e: RuntimeError) => void;
  private closing: Promise<void> | null = null;
  private readonly onProcessExit = () => this.agent.killAllNow();

  private constructor(opts: ResolvedOptions) {
    this.opts = opts;
    this.runDir = resolve(opts.runDir);
    mkdirSync(join(this.runDir, 'logs'), { recursive: true });
    this.coordLog = join(this.runDir, 'logs', 'coordinator.log');
    // Unix socket paths are limited to about 107 bytes.
    const inRun = join(this.runDir, 'sock');
    if (join(inRun, 'c.sock').length < 100) {
      mkdirSync(inRun, { recursive: true, mode: 0o700 });
      this.sockDir = inRun;
    } else this.sockDir = mkdtempSync(join(tmpdir(), 'q-'));
    this.ipcEndpoint = `ipc://${join(this.sockDir, 'c.sock')}`;
    this.failure = new Promise((r) => (this.setFailure = r));
    this.agent = new NodeAgent({
      onLine: (role, replica, line) => this.replica(role, replica)?.log.write(line),
      onExit: (info) => this.onExit(LOCAL_NODE, info),
    });
    process.on('exit', this.onProcessExit);
  }

  /** Binds the sockets (and makes the run's CURVE keys when `listen` is set); no roles yet. */
  static async open(options: RuntimeOptions): Promise<Coordinator> {
    const c = new Coordinator(resolveOptions(options));
    try {
      await c.bind();
    } catch (e) {
      await c.shutdown();
      throw e;
    }
    return c;
  }

  private async bind(): Promise<void> {
    const buffers = { sendBufferSize: SOCKET_BUFFER_BYTES, receiveBufferSize: SOCKET_BUFFER_BYTES };
    const local = new zmq.Router({ linger: 0, mandatory: true, ...buffers });
    await local.bind(this.ipcEndpoint);
    this.addEndpoint(local, this.ipcEndpoint);
    if (this.opts.listen) {
      this.keys = this.opts.keys ?? generateRunKeys();
      this.nodeKeysFile = writeNodeKeys(join(this.runDir, 'keys', 'node.json'), this.keys);
      await allowClients(this.zapDomain, [this.keys.node.publicKey], (addr) => this.note(`refused a tcp peer from ${addr}: its CURVE key is not this run's`));
      const remote = new zmq.Router({ linger: 0, mandatory: true, ...buffers, curveServer: true, curveSecretKey: this.keys.server.secretKey, zapDomain: this.zapDomain });
      await remote.bind(this.opts.listen);
      this.tcpEndpoint = remote.lastEndpoint!;
      this.addEndpoint(remote, this.tcpEndpoint);
      void this.watchEvents(remote);
    }
    this.timer = setInterval(() => this.tick(), this.opts.heartbeatMs);
  }

  private addEndpoint(sock: zmq.Router, address: string): void {
    const ep: Endpoint = { sock, out: new SendQueue(sock), index: this.endpoints.length, address };
    this.endpoints.push(ep);
    void this.receive(ep);
  }

  private async watchEvents(sock: zmq.Router): Promise<void> {
    try {
      for await (const ev of sock.events) {
        if (ev.type === 'handshake:error:protocol' || ev.type === 'handshake:error:auth' || ev.type === 'handshake:error:other')
          this.note(`tcp handshake refused (${ev.type}) from ${'address' in ev ? ev.address : '?'}: ${'error' in ev ? ev.error.message : ''}`);
      }
    } catch {
      /* socket closed */
    }
  }

  /** Starts every replica of the plan and resolves when all have said hello. */
  async start(plan: PlanInput | Placement): Promise<void> {
    if (this.roles.size) throw new Error('runtime: start() was already called');
    const planned = 'roles' in plan && Array.isArray(Object.values(plan.roles)[0]) ? (plan as Placement) : planPlacement(plan as PlanInput);
    const remote = [...new Set(Object.values(planned.roles).flat().map((p) => p.node))].filter((n) => n !== LOCAL_NODE);
    if (remote.length) {
      if (!this.tcpEndpoint) throw new Error(`runtime: the plan places roles on node(s) ${remote.join(', ')} but no 'listen' endpoint was given`);
      await this.waitForNodes(remote);
    }
    const placement = withCollectives(planned, this.sockDir, COLLECTIVE_TIMEOUT_MS, await this.openRelays(planned));
    for (const [name, plans] of Object.entries(placement.roles)) this.roles.set(name, plans.map((p) => this.newReplica(p)));
    const all = [...this.roles.values()].flat();
    await Promise.all(all.map((r) => this.spawn(r)));
    const deadline = Date.now() + this.opts.startTimeoutMs + 1000;
    await Promise.all(all.map((r) => this.waitReady(r, deadline)));
  }

  /**
   * A relay (src/runtime/collective.ts) for each group whose replicas are not
   * all on this machine, and how each replica reaches it: local ones at the
   * address this coordinator listens on (loopback when that is a wildcard),
   * remote ones at the host their node agent reached the coordinator by.
   */
  private async openRelays(placement: Placement): Promise<RelayAddress | undefined> {
    const groups = Object.entries(placement.roles).filter(([, plans]) => needsRelay(plans));
    if (groups.length === 0) return undefined;
    const keys = this.keys!;
    const [, listenHost] = /^tcp:\/\/(.+):\d+$/.exec(this.tcpEndpoint!)!;
    // A fixed listen port P gives the relays P+1, P+2, ... (one rule for a firewall); 'tcp://HOST:*' any free ones.
    const fixed = /:(\d+)$/.exec(this.opts.listen!)?.[1];
    const ports = new Map<string, number>();
    for (const [i, [group, plans]] of groups.entries()) {
      const port = fixed ? Number(fixed) + 1 + i : '*';
      const relay = await Relay.open({ group, size: plans.length, host: listenHost, port, secretKey: keys.server.secretKey, zapDomain: this.zapDomain, note: (line) => this.note(line) });
      this.relays.push(relay);
      ports.set(group, relay.port);
      this.note(`collective '${group}': replicas on ${[...new Set(plans.map((p) => p.node))].join(', ')} average through a relay on port ${relay.port}`);
    }
    const curve = { serverKey: keys.server.publicKey, publicKey: keys.node.publicKey, secretKey: keys.node.secretKey };
    return (role, plan) => {
      let host = ['0.0.0.0', '*', '[::]', '::'].includes(listenHost) ? '127.0.0.1' : listenHost;
      if (plan.node !== LOCAL_NODE) {
        const seen = /^tcp:\/\/(.+):\d+$/.exec(String(this.nodes.get(plan.node)?.info.coordinator ?? ''));
        if (!seen) throw new Error(`runtime: node '${plan.node}' did not say at which address it reaches the coordinator (an older quartet node?), which its '${role}' replica needs for gradient averaging`);
        host = seen[1];
      }
      return { endpoint: `tcp://${host}:${ports.get(role)}`, curve };
    };
  }

  private newReplica(plan: ReplicaPlan): Replica {
    const log = new RoleLog(join(this.runDir, 'logs'), plan.role, plan.replica, this.opts.echo);
    return newReplica(plan, log, (rep, m, p, o) => this.call(rep, m, p, o));
  }

  private waitForNodes(names: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failed) return done(this.failed);
        if (names.every((n) => this.nodes.has(n))) return done();
      };
      const timer = setTimeout(() => done(new RuntimeError('role_missing', `runtime: node(s) ${names.filter((n) => !this.nodes.has(n)).join(', ')} did not join ${this.tcpEndpoint} within ${this.opts.nodeTimeoutMs} ms (start them with: quartet node --coordinator ${this.tcpEndpoint} --keys ${this.nodeKeysFile} --name NAME)`)), this.opts.nodeTimeoutMs);
      const done = (e?: Error) => {
        clearTimeout(timer);
        this.nodeWaiters.delete(check);
        e ? reject(e) : resolve();
      };
      this.nodeWaiters.add(check);
      check();
    });
  }

  private async spawn(rep: Replica): Promise<void> {
    rep.token = randomBytes(16).toString('hex');
    rep.state = 'starting';
    rep.peer = null;
    rep.spawnedAt = Date.now();
    rep.exited = new Promise((r) => (rep.markExited = r));
    const spec = { plan: rep.plan, token: rep.token, heartbeatMs: this.opts.heartbeatMs, coordinatorTimeoutMs: this.opts.coordinatorTimeoutMs };
    try {
      if (rep.plan.node === LOCAL_NODE) {
        rep.pid = this.agent.spawn({ ...spec, endpoint: this.ipcEndpoint });
      } else {
        const node = this.nodes.get(rep.plan.node);
        if (!node) throw new Error(`node '${rep.plan.node}' is not connected`);
        const r = await this.nodeRequest(node, 'spawn', { plan: rep.plan, token: rep.token, heartbeat_ms: spec.heartbeatMs, coordinator_timeout_ms: spec.coordinatorTimeoutMs });
        rep.pid = Number(r.pid);
      }
      rep.log.note(`started ${rep.plan.role}/${rep.plan.replica} on ${rep.plan.node} as pid ${rep.pid} (devices ${rep.plan.devices.join('+')}, start ${rep.restarts + 1})`);
    } catch (e) {
      rep.markExited();
      this.down(rep, `could not be started: ${(e as Error).message}`);
    }
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

  /** The same call to every replica of the given roles (default: all), e.g. save or stats. */
  async broadcast(method: string, payload: Payload = {}, opts: CallOptions & { roles?: string[] } = {}): Promise<Record<string, CallResult[]>> {
    const names = opts.roles ?? this.roleNames();
    const results = await Promise.all(names.map((n) => this.group(n).broadcast(method, payload, opts)));
    return Object.fromEntries(names.map((n, i) => [n, results[i]]));
  }

  private replicasOf(role: string): Replica[] {
    const r = this.roles.get(role);
    if (!r) throw new RuntimeError('role_missing', `no role '${role}' in this run (have ${this.roleNames().join(', ') || 'none'})`);
    return r;
  }

  private replica(role: string, replica: number): Replica | undefined {
    return this.roles.get(role)?.[replica];
  }

  // ---- calls ----

  private async call(rep: Replica, method: string, payload: Payload = {}, opts: CallOptions = {}): Promise<CallResult> {
    const name = `${rep.plan.role}/${rep.plan.replica}`;
    if (this.failed) throw this.failed;
    if (this.closing) throw new RuntimeError('shutting_down', `${name}.${method}: the runtime is shutting down`);
    const timeoutMs = opts.timeoutMs ?? this.opts.callTimeoutMs;
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
    if (rep.state !== 'ready') await this.waitReady(rep, deadline);
    const id = ++this.nextId;
    const left = deadline === Infinity ? undefined : Math.max(0, deadline - Date.now());
    const frames = encode({ kind: 'req', id, method, sender: 'coordinator', meta: payload.meta, timeout_ms: left }, payload.tensors);
    const peer = rep.peer!;
    rep.calls++;
    return new Promise<CallResult>((resolve, reject) => {
      const p: Pending = { method, resolve, reject };
      if (left !== undefined) {
        p.timer = setTimeout(() => {
          rep.pending.delete(id);
          reject(new RuntimeError('timeout', `${name}.${method}: no reply within ${timeoutMs} ms`, true));
          // A role that is silent while it owes a reply past its deadline is hung.
          if (Date.now() - rep.lastHeard > this.opts.peerTimeoutMs) this.down(rep, `was silent for ${Date.now() - rep.lastHeard} ms and missed the deadline of '${method}' (hung)`);
        }, left);
      }
      rep.pending.set(id, p);
      if (method === 'shutdown') rep.state = 'stopped';
      peer.sock.out.send([peer.id, ...frames]).catch((e) => {
        if (rep.pending.delete(id)) {
          clearTimeout(p.timer);
          reject(new RuntimeError('role_died', `${name}.${method}: could not send: ${(e as Error).message}`, true));
        }
      });
    });
  }

  private waitReady(rep: Replica, deadline: number): Promise<void> {
    return this.failed ? Promise.reject(this.failed) : waitReady(rep, deadline);
  }

  // ---- receiving ----

  private async receive(ep: Endpoint): Promise<void> {
    try {
      for await (const [id, ...frames] of ep.sock) this.onFrames(ep, id, frames);
    } catch (e) {
      if (!ep.sock.closed) this.note(`receive on ${ep.address} failed: ${(e as Error).message}`);
    }
  }

  private onFrames(ep: Endpoint, id: Buffer, frames: Buffer[]): void {
    const key = `${ep.index}:${id.toString('hex')}`;
    const peer = this.peers.get(key);
    if (peer) peer.lastHeard = Date.now();
    const d = decode(frames);
    if (!d.ok) {
      this.note(`refused a message from ${peer?.name ?? `unknown peer ${key}`} on ${ep.address}: ${d.error.code}: ${d.error.message}`);
      return this.reply(ep, id, { kind: 'err', id: d.id, error: d.error.toValue() });
    }
    const m = d.msg;
    if (!peer) {
      if (m.kind === 'hello') return this.onHello(ep, id, key, m);
      this.note(`refused a '${m.kind}' from ${key} on ${ep.address}: it did not say hello`);
      if (m.kind === 'req') this.reply(ep, id, { kind: 'err', id: m.id, error: { code: 'not_hello', message: 'say hello first', retriable: false } });
      return;
    }
    if (peer.replica) return this.onRoleMessage(peer.replica, m);
    if (peer.node) return this.onNodeMessage(peer.node, m);
  }

  private onHello(ep: Endpoint, id: Buffer, key: string, m: Message): void {
    const meta = m.meta ?? {};
    const refuse = (why: string, code: 'unexpected_peer' | 'shutting_down' = 'unexpected_peer') => {
      this.note(`refused hello from ${m.sender} (${key} on ${ep.address}): ${why}`);
      this.reply(ep, id, { kind: 'err', id: m.id, error: { code, message: why, retriable: code === 'shutting_down' } });
    };
    const peer: Peer = { key, sock: ep, id, name: m.sender, lastHeard: Date.now() };
    if (meta.role === 'node') {
      const name = String(meta.name ?? '');
      if (ep.index === 0) return refuse('nodes join over tcp');
      // A node that rejoins for the next step may reach this coordinator before its socket is gone.
      if (this.closing) return refuse('this coordinator is shutting down; join the next one', 'shutting_down');
      if (this.nodes.has(name)) return refuse(`a node named '${name}' is already connected`);
      peer.node = { name, peer, info: meta, pending: new Map() };
      this.nodes.set(name, peer.node);
      this.peers.set(key, peer);
      this.note(`node '${name}' joined from ${meta.host} (pid ${meta.pid})`);
      this.reply(ep, id, { kind: 'ready', id: m.id, meta: { heartbeat_ms: this.opts.heartbeatMs, coordinator_timeout_ms: this.opts.coordinatorTimeoutMs } });
      for (const w of this.nodeWaiters) w();
      return;
    }
    const rep = typeof meta.role === 'string' && Number.isSafeInteger(meta.replica) ? this.replica(meta.role, meta.replica as number) : undefined;
    if (!rep) return refuse(`no role ${JSON.stringify(meta.role)} replica ${JSON.stringify(meta.replica)} in this run`);
    if (rep.state !== 'starting' || meta.token !== rep.token) return refuse(`${rep.plan.role}/${rep.plan.replica} is not expecting this process (state ${rep.state}, token ${meta.token === rep.token ? 'ok' : 'wrong'})`);
    if ((rep.plan.node === LOCAL_NODE) !== (ep.index === 0)) return refuse(`${rep.plan.role}/${rep.plan.replica} must connect on ${rep.plan.node === LOCAL_NODE ? 'ipc' : 'tcp'}`);
    peer.replica = rep;
    this.peers.set(key, peer);
    rep.peer = peer;
    rep.state = 'ready';
    rep.lastHeard = Date.now();
    if (typeof meta.pid === 'number' && meta.pid !== rep.pid && rep.plan.node === LOCAL_NODE) rep.log.note(`hello from pid ${meta.pid} (spawned ${rep.pid})`);
    this.reply(ep, id, { kind: 'ready', id: m.id, meta: { heartbeat_ms: this.opts.heartbeatMs, coordinator_timeout_ms: this.opts.coordinatorTimeoutMs } });
    for (const w of [...rep.waiters]) w.resolve();
  }

  private onRoleMessage(rep: Replica, m: Message): void {
    rep.lastHeard = Date.now();
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
        this.note(`refused a '${m.kind}' from ${rep.plan.role}/${rep.plan.replica}: roles only answer`);
        if (m.kind === 'req') this.send(rep.peer!, { kind: 'err', id: m.id, error: { code: 'bad_message', message: 'roles do not send requests', retriable: false } });
    }
  }

  private onNodeMessage(node: RemoteNode, m: Message): void {
    switch (m.kind) {
      case 'hb':
        return;
      case 'rep':
      case 'err':
        return settle(node.pending, m);
      case 'log': {
        const meta = m.meta ?? {};
        const rep = this.replica(String(meta.role), Number(meta.replica));
        if (!rep || rep.plan.node !== node.name) return this.note(`node '${node.name}' sent a log for unknown role ${meta.role}/${meta.replica}`);
        if (meta.event === 'exit') {
          const info: ExitInfo = {
            role: rep.plan.role, replica: rep.plan.replica, pid: Number(meta.pid), token: String(meta.token),
            code: (meta.code as number | null) ?? null, signal: (meta.signal as string | null) ?? null, spawnError: meta.spawn_error as string | undefined,
          };
          return this.onExit(node.name, info);
        }
        for (const l of asLines(meta.lines)) rep.log.write(l);
        return;
      }
      case 'bye':
        return this.nodeLost(node, 'said bye');
      default:
        this.note(`refused a '${m.kind}' from node '${node.name}'`);
    }
  }

  private nodeRequest(node: RemoteNode, method: string, meta: Meta): Promise<Meta> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const p: Pending = { method, resolve: (r) => resolve(r.meta), reject };
      p.timer = setTimeout(() => {
        node.pending.delete(id);
        reject(new RuntimeError('timeout', `node '${node.name}' did not answer '${method}' within ${this.opts.startTimeoutMs} ms`, true));
      }, this.opts.startTimeoutMs);
      node.pending.set(id, p);
      this.send(node.peer, { kind: 'req', id, method, meta });
    });
  }

  private send(peer: Peer, h: Omit<Header, 'version' | 'sender'>): void {
    peer.sock.out.send([peer.id, ...encode({ ...h, sender: 'coordinator' })]).catch(() => {});
  }

  private reply(ep: Endpoint, id: Buffer, h: Omit<Header, 'version' | 'sender'>): void {
    ep.out.send([id, ...encode({ ...h, sender: 'coordinator' })]).catch(() => {});
  }

  // ---- supervision ----

  private tick(): void {
    const now = Date.now();
    // A late tick means this thread was busy: peers' heartbeats are queued unread.
    const late = now - this.lastTick > 2 * this.opts.heartbeatMs;
    this.lastTick = now;
    for (const peer of this.peers.values()) {
      if (late) {
        peer.lastHeard = now;
        if (peer.replica) peer.replica.lastHeard = now;
      }
      this.send(peer, { kind: 'hb', id: 0 });
    }
    if (late) return;
    for (const rep of [...this.roles.values()].flat()) {
      if (rep.state === 'ready' && rep.pending.size === 0 && now - rep.lastHeard > this.opts.peerTimeoutMs)
        this.down(rep, `was silent for ${now - rep.lastHeard} ms (hung)`);
      else if (rep.state === 'starting' && now - rep.spawnedAt > this.opts.startTimeoutMs)
        this.down(rep, `did not say hello within ${this.opts.startTimeoutMs} ms`);
    }
    for (const node of this.nodes.values())
      if (now - node.peer.lastHeard > this.opts.peerTimeoutMs) this.nodeLost(node, `was silent for ${now - node.peer.lastHeard} ms`);
  }

  private onExit(node: string, info: ExitInfo): void {
    const rep = this.replica(info.role, info.replica);
    if (!rep || rep.plan.node !== node) return;
    const how = info.spawnError ? `could not start: ${info.spawnError}` : info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
    // An earlier process of this replica, or one we stopped or killed ourselves: just record it.
    if (info.token !== rep.token || (rep.state !== 'ready' && rep.state !== 'starting') || this.closing) rep.log.note(`pid ${info.pid} ${how}`);
    if (info.token !== rep.token) return;
    rep.markExited();
    if (rep.state === 'stopped' || rep.state === 'failed' || this.closing) {
      rep.state = rep.state === 'failed' ? 'failed' : 'stopped';
      this.forgetPeer(rep);
      failAll(rep.pending, new RuntimeError('shutting_down', `${info.role}/${info.replica} stopped`, false));
      return;
    }
    this.down(rep, how);
  }

  /** A replica is dead or hung: fail its calls, then restart it by its policy or fail the run. */
  private down(rep: Replica, why: string): void {
    if (rep.state === 'stopped' || rep.state === 'failed' || rep.state === 'restarting' || this.closing || this.failed) return;
    const name = `${rep.plan.role}/${rep.plan.replica}`;
    rep.log.note(`${name} (pid ${rep.pid}) ${why}`);
    this.forgetPeer(rep);
    this.kill(rep);
    if (rep.restarts < rep.plan.maxRestarts) {
      rep.state = 'restarting';
      rep.restarts++;
      failAll(rep.pending, new RuntimeError('role_died', `${name} ${why}; restarting it (restart ${rep.restarts} of ${rep.plan.maxRestarts})`, true));
      void rep.exited.then(() => {
        if (!this.closing && !this.failed && rep.state === 'restarting') return this.spawn(rep);
      });
      return;
    }
    rep.state = 'failed';
    const lines = rep.log.lastLines(12).map((l) => '  ' + l).join('\n');
    this.fail(new RuntimeError('run_failed', `role ${name} ${why}, and it has no restarts left (restarted ${rep.restarts} of ${rep.plan.maxRestarts} times). Last lines of ${rep.log.file}:\n${lines}`));
  }

  private kill(rep: Replica): void {
    if (rep.plan.node === LOCAL_NODE) void this.agent.kill(rep.plan.role, rep.plan.replica);
    else {
      const node = this.nodes.get(rep.plan.node);
      if (node) this.nodeRequest(node, 'kill', { role: rep.plan.role, replica: rep.plan.replica }).catch(() => {});
      else rep.markExited();
    }
  }

  private nodeLost(node: RemoteNode, why: string): void {
    if (this.nodes.get(node.name) !== node) return;
    this.nodes.delete(node.name);
    this.peers.delete(node.peer.key);
    this.note(`node '${node.name}' ${why}`);
    failAll(node.pending, new RuntimeError('role_died', `node '${node.name}' ${why}`, true));
    for (const rep of [...this.roles.values()].flat()) {
      if (rep.plan.node !== node.name) continue;
      rep.markExited();
      if (this.closing || rep.state === 'stopped') rep.state = 'stopped';
      else {
        rep.plan.maxRestarts = Math.min(rep.plan.maxRestarts, rep.restarts); // its machine is gone: no restart
        this.down(rep, `is lost with its node '${node.name}' (${why})`);
      }
    }
  }

  private forgetPeer(rep: Replica): void {
    if (rep.peer) this.peers.delete(rep.peer.key);
    rep.peer = null;
  }

  private fail(err: RuntimeError): void {
    if (this.failed) return;
    this.failed = err;
    this.note(err.message);
    for (const rep of [...this.roles.values()].flat()) {
      failAll(rep.pending, err);
      for (const w of [...rep.waiters]) w.reject(err);
    }
    for (const w of this.nodeWaiters) w();
    this.setFailure(err);
    // Nothing can use the run any more: stop every process now rather than leave orphans.
    this.closing ??= this.stopAll(false);
  }

  private note(line: string): void {
    appendFileSync(this.coordLog, `${new Date().toISOString()} ${line}\n`);
  }

  // ---- stats and shutdown ----

  async stats(timeoutMs = 10_000): Promise<ReplicaStats[]> {
    const all = [...this.roles.values()].flat();
    return Promise.all(all.map(async (rep) => {
      let report: ReplicaStats['report'];
      try {
        report = rep.state === 'ready' ? (await this.call(rep, 'stats', {}, { timeoutMs })).meta : { error: `state ${rep.state}` };
      } catch (e) {
        report = { error: (e as Error).message };
      }
      return {
        role: rep.plan.role, replica: rep.plan.replica, node: rep.plan.node, state: rep.state, pid: rep.pid,
        restarts: rep.restarts, calls: rep.calls, inFlight: rep.pending.size, logFile: rep.log.file, report,
      };
    }));
  }

  /** Joined remote nodes, by name. */
  nodeNames(): string[] {
    return [...this.nodes.keys()];
  }

  /**
   * Says bye to every role and node, waits for them to exit (SIGKILL after
   * stopGraceMs), removes sockets. `again`: another coordinator of this run
   * (the next training step) will listen at the same address with the same
   * keys, and the node agents should rejoin it rather than exit.
   */
  shutdown(opts: { again?: boolean } = {}): Promise<void> {
    this.closing ??= this.stopAll(opts.again === true);
    return this.closing;
  }

  private async stopAll(again: boolean): Promise<void> {
    const all = [...this.roles.values()].flat();
    for (const rep of all) {
      if (rep.state !== 'failed') rep.state = 'stopped';
      if (rep.peer) this.send(rep.peer, { kind: 'bye', id: 0 });
      failAll(rep.pending, this.failed ?? new RuntimeError('shutting_down', `${rep.plan.role}/${rep.plan.replica}: the runtime is shutting down`));
      for (const w of [...rep.waiters]) w.reject(new RuntimeError('shutting_down', 'the runtime is shutting down'));
    }
    for (const node of this.nodes.values()) this.send(node.peer, { kind: 'bye', id: 0, ...(again && { meta: { again: true } }) });
    const grace = this.opts.stopGraceMs;
    const remoteGone = Promise.all(all.filter((r) => r.plan.node !== LOCAL_NODE).map((r) => r.exited));
    await Promise.all([
      // A role that does not leave after bye gets SIGTERM, then SIGKILL.
      timeout(Promise.all(all.filter((r) => r.plan.node === LOCAL_NODE).map((r) => r.exited)), grace).then(() => this.agent.stopAll(grace)),
      timeout(remoteGone, 2 * grace + 1000),
    ]);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    // Let the byes reach the nodes before the sockets go.
    await new Promise((r) => setTimeout(r, 50));
    // Unbinding resolves once the port and socket file are released; close alone finishes later, in ZeroMQ's own thread.
    await Promise.all(this.relays.splice(0).map((r) => r.close()));
    await Promise.all(this.endpoints.map((ep) => ep.sock.unbind(ep.address).catch(() => {})));
    for (const ep of this.endpoints) ep.sock.close();
    this.endpoints.length = 0;
    forgetClients(this.zapDomain);
    for (const rep of all) rep.log.close();
    rmSync(this.sockDir, { recursive: true, force: true });
    process.off('exit', this.onProcessExit);
  }
}

/** Opens a coordinator and starts the plan; shuts everything down again if starting fails. */
export async function startRuntime(plan: PlanInput | Placement, options: RuntimeOptions): Promise<Coordinator> {
  const rt = await Coordinator.open(options);
  try {
    await Promise.race([rt.start(plan), rt.failure.then((e) => Promise.reject(e))]);
  } catch (e) {
    await rt.shutdown();
    throw e;
  }
  return rt;
}

function timeout<T>(p: Promise<T>, ms: number): Promise<T | void> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<void>((r) => (t = setTimeout(r, ms)))]).finally(() => clearTimeout(t));
}

function asLines(x: unknown): string[] {
  return Array.isArray(x) ? x.map(String) : typeof x === 'string' ? [x] : [];
}
