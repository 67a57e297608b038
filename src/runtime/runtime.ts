// A run's runtime: binds the ROUTER(s), starts the plan's roles, and hands
// trainers the `Roles` they call; the router (src/runtime/router.ts) routes
// the calls and the supervisor (src/runtime/supervisor.ts) keeps the roles
// alive. One per training step.
//
//   const rt = await startRuntime(planInput, { runDir });
//   const out = await rt.group('actor').call('generate', { tensors: { prompts } });
//   await rt.shutdown();
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NodeAgent } from './agent.js';
import { COLLECTIVE_TIMEOUT_MS, needsRelay, Relay, type RelayAddress, withCollectives } from './collective.js';
import { allowClients, forgetClients, generateRunKeys, writeNodeKeys, type RunKeys } from './curve.js';
import type { CallOptions, CallResult, Payload, RoleGroup, RoleHandle, Roles } from './handles.js';
import { resolveOptions, type RuntimeOptions } from './options.js';
import { LOCAL_NODE, planPlacement, type Placement, type PlanInput } from './placement.js';
import { RuntimeError } from './protocol.js';
import { failAll, newReplica, waitReady, type ReplicaStats } from './records.js';
import { RoleLog } from './role-log.js';
import { Router, type RunContext } from './router.js';
import { Supervisor } from './supervisor.js';

let runCounter = 0;

export class Runtime implements Roles {
  readonly runDir: string;
  readonly ipcEndpoint: string;
  /** Set when `listen` was given: the endpoint other machines join. */
  tcpEndpoint: string | null = null;
  /** Set when `listen` was given: the file another machine's `quartet node --keys` needs. */
  nodeKeysFile: string | null = null;
  /** Resolves with the error when the run fails (a role out of restarts or beyond rebuilding, a node lost). */
  readonly failure: Promise<RuntimeError>;

  private readonly ctx: RunContext;
  private readonly router: Router;
  private readonly supervisor: Supervisor;
  private readonly agent: NodeAgent;
  private readonly sockDir: string;
  private readonly coordLog: string;
  private readonly zapDomain = `quartet-${process.pid}-${++runCounter}`;
  private readonly nodeWaiters = new Set<() => void>();
  private readonly relays: Relay[] = [];
  private keys: RunKeys | null = null;
  private timer: NodeJS.Timeout | null = null;
  private setFailure!: (e: RuntimeError) => void;
  private closing: Promise<void> | null = null;
  // A coordinator that dies takes its roles (they watch their parent) and its socket folder with it.
  private readonly onProcessExit = () => {
    this.agent.killAllNow();
    rmSync(this.sockDir, { recursive: true, force: true });
  };

  private constructor(options: RuntimeOptions) {
    const opts = resolveOptions(options);
    this.runDir = resolve(opts.runDir);
    mkdirSync(join(this.runDir, 'logs'), { recursive: true });
    this.coordLog = join(this.runDir, 'logs', 'coordinator.log');
    // Unix socket paths are limited to about 107 bytes.
    const inRun = join(this.runDir, 'sock');
    if (join(inRun, 'c.sock').length < 100) {
      // A folder left by a coordinator that was killed (-9) goes: its socket files are dead.
      rmSync(inRun, { recursive: true, force: true });
      mkdirSync(inRun, { recursive: true, mode: 0o700 });
      this.sockDir = inRun;
    } else this.sockDir = mkdtempSync(join(tmpdir(), 'q-'));
    this.ipcEndpoint = `ipc://${join(this.sockDir, 'c.sock')}`;
    this.failure = new Promise((r) => (this.setFailure = r));
    this.ctx = { opts, failed: null, closing: false, note: (line) => appendFileSync(this.coordLog, `${new Date().toISOString()} ${line}\n`) };
    this.router = new Router(this.ctx);
    this.agent = new NodeAgent({
      onLine: (role, replica, line) => this.router.replica(role, replica)?.log.write(line),
      onExit: (info) => this.supervisor.onExit(LOCAL_NODE, info),
    });
    this.supervisor = new Supervisor(this.ctx, this.router, this.agent, {
      ipcEndpoint: this.ipcEndpoint, runDir: this.runDir,
      fail: (e) => this.fail(e),
      nodeJoined: () => { for (const w of this.nodeWaiters) w(); },
    });
    this.router.hooks = this.supervisor;
    process.on('exit', this.onProcessExit);
  }

  /** Binds the sockets (and makes the run's CURVE keys when `listen` is set); no roles yet. */
  static async open(options: RuntimeOptions): Promise<Runtime> {
    const c = new Runtime(options);
    try {
      await c.bind();
    } catch (e) {
      await c.shutdown();
      throw e;
    }
    return c;
  }

  private async bind(): Promise<void> {
    const { opts } = this.ctx;
    await this.router.bind(this.ipcEndpoint);
    if (opts.listen) {
      this.keys = opts.keys ?? generateRunKeys();
      this.nodeKeysFile = writeNodeKeys(join(this.runDir, 'keys', 'node.json'), this.keys);
      await allowClients(this.zapDomain, [this.keys.node.publicKey], (addr) => this.ctx.note(`refused a tcp peer from ${addr}: its CURVE key is not this run's`));
      const ep = await this.router.bind(opts.listen, { secretKey: this.keys.server.secretKey, zapDomain: this.zapDomain });
      this.tcpEndpoint = ep.address;
      void this.watchEvents(ep.sock);
    }
    this.timer = setInterval(() => this.supervisor.tick(), opts.heartbeatMs);
  }

  private async watchEvents(sock: Router['endpoints'][number]['sock']): Promise<void> {
    try {
      for await (const ev of sock.events) {
        if (ev.type === 'handshake:error:protocol' || ev.type === 'handshake:error:auth' || ev.type === 'handshake:error:other')
          this.ctx.note(`tcp handshake refused (${ev.type}) from ${'address' in ev ? ev.address : '?'}: ${'error' in ev ? ev.error.message : ''}`);
      }
    } catch {
      /* socket closed */
    }
  }

  /** Starts every replica of the plan and resolves when all have said hello. */
  async start(plan: PlanInput | Placement): Promise<void> {
    if (this.router.roles.size) throw new Error('runtime: start() was already called');
    const planned = 'roles' in plan && Array.isArray(Object.values(plan.roles)[0]) ? (plan as Placement) : planPlacement(plan as PlanInput);
    const remote = [...new Set(Object.values(planned.roles).flat().map((p) => p.node))].filter((n) => n !== LOCAL_NODE);
    if (remote.length) {
      if (!this.tcpEndpoint) throw new Error(`runtime: the plan places roles on node(s) ${remote.join(', ')} but no 'listen' endpoint was given`);
      await this.waitForNodes(remote);
    }
    const placement = withCollectives(planned, this.sockDir, COLLECTIVE_TIMEOUT_MS, await this.openRelays(planned));
    for (const [name, plans] of Object.entries(placement.roles)) {
      this.router.roles.set(name, plans.map((p) => {
        const log = new RoleLog(join(this.runDir, 'logs'), p.role, p.replica, this.ctx.opts.echo);
        return newReplica(p, log, (rep, m, pl, o) => this.router.call(rep, m, pl, o));
      }));
    }
    const all = this.router.all();
    await Promise.all(all.map((r) => this.supervisor.spawn(r)));
    const { failed } = this.ctx;
    if (failed) throw failed;
    const deadline = Date.now() + this.ctx.opts.startTimeoutMs + 1000;
    await Promise.all(all.map((r) => (this.ctx.failed ? Promise.reject(this.ctx.failed) : waitReady(r, deadline))));
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
    const fixed = /:(\d+)$/.exec(this.ctx.opts.listen!)?.[1];
    const ports = new Map<string, number>();
    for (const [i, [group, plans]] of groups.entries()) {
      const port = fixed ? Number(fixed) + 1 + i : '*';
      const relay = await Relay.open({ group, size: plans.length, host: listenHost, port, secretKey: keys.server.secretKey, zapDomain: this.zapDomain, note: (line) => this.ctx.note(line) });
      this.relays.push(relay);
      ports.set(group, relay.port);
      this.ctx.note(`collective '${group}': replicas on ${[...new Set(plans.map((p) => p.node))].join(', ')} average through a relay on port ${relay.port}`);
    }
    const curve = { serverKey: keys.server.publicKey, publicKey: keys.node.publicKey, secretKey: keys.node.secretKey };
    return (role, plan) => {
      let host = ['0.0.0.0', '*', '[::]', '::'].includes(listenHost) ? '127.0.0.1' : listenHost;
      if (plan.node !== LOCAL_NODE) {
        const seen = /^tcp:\/\/(.+):\d+$/.exec(String(this.router.nodes.get(plan.node)?.info.coordinator ?? ''));
        if (!seen) throw new Error(`runtime: node '${plan.node}' did not say at which address it reaches the coordinator (an older quartet node?), which its '${role}' replica needs for gradient averaging`);
        host = seen[1];
      }
      return { endpoint: `tcp://${host}:${ports.get(role)}`, curve };
    };
  }

  private waitForNodes(names: string[]): Promise<void> {
    const { nodes } = this.router;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.ctx.failed) return done(this.ctx.failed);
        if (names.every((n) => nodes.has(n))) return done();
      };
      const timer = setTimeout(() => done(new RuntimeError('role_missing', `runtime: node(s) ${names.filter((n) => !nodes.has(n)).join(', ')} did not join ${this.tcpEndpoint} within ${this.ctx.opts.nodeTimeoutMs} ms (start them with: quartet node --coordinator ${this.tcpEndpoint} --keys ${this.nodeKeysFile} --name NAME)`)), this.ctx.opts.nodeTimeoutMs);
      const done = (e?: Error) => {
        clearTimeout(timer);
        this.nodeWaiters.delete(check);
        e ? reject(e) : resolve();
      };
      this.nodeWaiters.add(check);
      check();
    });
  }

  // ---- the Roles interface ----

  roleNames(): string[] {
    return this.router.roleNames();
  }

  group(role: string): RoleGroup {
    return this.router.group(role);
  }

  role(role: string, replica: number): RoleHandle {
    return this.router.role(role, replica);
  }

  /** The same call to every replica of the given roles (default: all), e.g. save or stats. */
  async broadcast(method: string, payload: Payload = {}, opts: CallOptions & { roles?: string[] } = {}): Promise<Record<string, CallResult[]>> {
    const names = opts.roles ?? this.roleNames();
    const results = await Promise.all(names.map((n) => this.group(n).broadcast(method, payload, opts)));
    return Object.fromEntries(names.map((n, i) => [n, results[i]]));
  }

  /** Joined remote nodes, by name. */
  nodeNames(): string[] {
    return [...this.router.nodes.keys()];
  }

  async stats(timeoutMs = 10_000): Promise<ReplicaStats[]> {
    return Promise.all(this.router.all().map(async (rep) => {
      let report: ReplicaStats['report'];
      try {
        report = rep.state === 'ready' ? (await this.router.callOnce(rep, 'stats', {}, { timeoutMs }, false)).meta : { error: `state ${rep.state}` };
      } catch (e) {
        report = { error: (e as Error).message };
      }
      return {
        role: rep.plan.role, replica: rep.plan.replica, node: rep.plan.node, state: rep.state, pid: rep.pid,
        restarts: rep.restarts, calls: rep.calls, inFlight: rep.pending.size, logFile: rep.log.file,
        replay: { bytes: rep.replay.bytes, peakBytes: rep.replay.peakBytes, calls: rep.replay.entries.length, recordMs: rep.replay.recordMs, base: rep.replay.base },
        report,
      };
    }));
  }

  // ---- failure and shutdown ----

  private fail(err: RuntimeError): void {
    if (this.ctx.failed) return;
    this.ctx.failed = err;
    this.ctx.note(err.message);
    this.router.failEverything(err);
    for (const w of this.nodeWaiters) w();
    this.setFailure(err);
    // Nothing can use the run any more: stop every process now rather than leave orphans.
    this.closing ??= this.stopAll(false);
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
    this.ctx.closing = true;
    const all = this.router.all();
    for (const rep of all) {
      if (rep.state !== 'failed') rep.state = 'stopped';
      if (rep.peer) this.router.send(rep.peer, { kind: 'bye', id: 0 });
      failAll(rep.pending, this.ctx.failed ?? new RuntimeError('shutting_down', `${rep.plan.role}/${rep.plan.replica}: the runtime is shutting down`));
      for (const w of [...rep.waiters]) w.reject(new RuntimeError('shutting_down', 'the runtime is shutting down'));
    }
    for (const node of this.router.nodes.values()) this.router.send(node.peer, { kind: 'bye', id: 0, ...(again && { meta: { again: true } }) });
    const grace = this.ctx.opts.stopGraceMs;
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
    const eps = this.router.endpoints;
    await Promise.all(eps.map((ep) => ep.sock.unbind(ep.address).catch(() => {})));
    for (const ep of eps) ep.sock.close();
    eps.length = 0;
    forgetClients(this.zapDomain);
    this.router.flushRefusals();
    for (const rep of all) rep.log.close();
    rmSync(this.sockDir, { recursive: true, force: true });
    // The supervisor's own snapshots served this run's processes only.
    rmSync(join(this.runDir, 'recovery'), { recursive: true, force: true });
    process.off('exit', this.onProcessExit);
  }
}

/** Opens a runtime and starts the plan; shuts everything down again if starting fails. */
export async function startRuntime(plan: PlanInput | Placement, options: RuntimeOptions): Promise<Runtime> {
  const rt = await Runtime.open(options);
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
