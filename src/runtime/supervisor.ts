// The runtime's supervisor: starts role processes through the node agents,
// watches them (heartbeats, per-method deadlines, exits), and brings a lost
// role back where it was — a new process, its state rebuilt from the replay
// log (src/runtime/replay-log.ts), then the calls that were in flight sent
// again by the router. A role that cannot be brought back fails the run with
// the reason; it never goes on with the weights it started with.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ExitInfo, NodeAgent } from './agent.js';
import type { CallResult, Payload } from './handles.js';
import { LOCAL_NODE } from './placement.js';
import { RuntimeError, type Message } from './protocol.js';
import { failAll, settle, type RemoteNode, type Replica } from './records.js';
import { metricsDiffer, stateEffect } from './replay-log.js';
import { FATAL_EXIT_CODE } from './role-server.js';
import { asLines, type Router, type RouterHooks, type RunContext } from './router.js';

/** Durations kept per method for derived deadlines. */
const RECENT = 20;

export interface SupervisorHost {
  /** The ipc endpoint local roles connect to. */
  ipcEndpoint: string;
  runDir: string;
  fail(err: RuntimeError): void;
  nodeJoined(): void;
}

export class Supervisor implements RouterHooks {
  private lastTick = Date.now();
  private snapshots = 0;

  constructor(private readonly ctx: RunContext, private readonly router: Router, private readonly agent: NodeAgent, private readonly host: SupervisorHost) {}

  // ---- starting ----

  async spawn(rep: Replica): Promise<void> {
    const { opts } = this.ctx;
    rep.token = randomBytes(16).toString('hex');
    rep.state = 'starting';
    rep.peer = null;
    rep.beating = false;
    rep.spawnedAt = Date.now();
    rep.exited = new Promise((r) => (rep.markExited = r));
    const spec = { plan: rep.plan, token: rep.token, heartbeatMs: opts.heartbeatMs, coordinatorTimeoutMs: opts.coordinatorTimeoutMs };
    try {
      if (rep.plan.node === LOCAL_NODE) {
        rep.pid = this.agent.spawn({ ...spec, endpoint: this.host.ipcEndpoint });
      } else {
        const node = this.router.nodes.get(rep.plan.node);
        if (!node) throw new Error(`node '${rep.plan.node}' is not connected`);
        const r = await this.router.nodeRequest(node, 'spawn', { plan: rep.plan, token: rep.token, heartbeat_ms: spec.heartbeatMs, coordinator_timeout_ms: spec.coordinatorTimeoutMs }, opts.startTimeoutMs);
        rep.pid = Number(r.pid);
      }
      rep.log.note(`started ${rep.plan.role}/${rep.plan.replica} on ${rep.plan.node} as pid ${rep.pid} (devices ${rep.plan.devices.join('+')}, start ${rep.restarts + 1})`);
    } catch (e) {
      rep.markExited();
      this.down(rep, `could not be started: ${(e as Error).message}`);
    }
  }

  /** Hello accepted: a first start or a replica without trained state serves at once; a restarted one is rebuilt first. */
  connected(rep: Replica): void {
    if (rep.downSince === null || !rep.replay.hasState) return this.serve(rep, 0, null);
    const group = this.router.replicasOf(rep.plan.role).length;
    if (group > 1) {
      return this.host.fail(new RuntimeError('run_failed', `${rep.plan.role}/${rep.plan.replica} died with trained state, and a replica of a group of ${group} cannot be rebuilt alone (its training calls average gradients with the others). The run stops rather than go on with different weights in each replica; --resume continues from the last checkpoint.`));
    }
    void this.rebuild(rep);
  }

  /**
   * Loads the last snapshot into the new process and replays the calls
   * answered since, checking that each replayed call answers what the lost
   * process answered: training is deterministic, so the rebuilt weights and
   * optimizer state are the lost ones bit for bit.
   */
  private async rebuild(rep: Replica): Promise<void> {
    const name = `${rep.plan.role}/${rep.plan.replica}`;
    const log = rep.replay;
    const calls = [...log.entries];
    rep.state = 'rebuilding';
    rep.log.note(`rebuilding ${name}: ${log.base ? `load ${log.base}` : 'start-up weights'}, then ${calls.length} call(s) replayed`);
    try {
      if (log.base) await this.router.callOnce(rep, 'load', { meta: { dir: log.base, optimizer: true } }, { timeoutMs: 0 }, true);
      for (const [i, c] of calls.entries()) {
        const r = await this.router.callOnce(rep, c.method, { meta: c.meta, tensors: c.tensors }, { timeoutMs: 0 }, true);
        const diff = metricsDiffer(c.metrics, r.metrics);
        if (diff) throw new Error(`replayed call ${i + 1} of ${calls.length} ('${c.method}') answered differently: ${diff}`);
      }
    } catch (e) {
      // Died again while rebuilding: the next process rebuilds from the start.
      if (e instanceof RuntimeError && (e.code === 'role_died' || e.code === 'shutting_down' || e.code === 'run_failed')) return;
      return this.host.fail(new RuntimeError('run_failed', `${name} could not be rebuilt after it ${rep.downWhy}: ${(e as Error).message}. The run stops rather than go on with the weights it started with; --resume continues from the last checkpoint.`));
    }
    if (rep.state === 'rebuilding') this.serve(rep, calls.length, log.base);
  }

  private serve(rep: Replica, replayed: number, base: string | null): void {
    const wasDown = rep.downSince;
    rep.state = 'ready';
    rep.downSince = null;
    if (wasDown !== null) {
      const seconds = (Date.now() - wasDown) / 1000;
      rep.log.note(`serving again ${seconds.toFixed(2)} s after it went down (${replayed} call(s) replayed${base ? ` onto ${base}` : ''})`);
      this.ctx.opts.onEvent?.({ event: 'role_restored', role: rep.plan.role, replica: rep.plan.replica, seconds, replayed, dir: base });
    }
    for (const w of [...rep.waiters]) w.resolve();
  }

  // ---- what the router reports ----

  answered(rep: Replica, method: string, payload: Payload, r: CallResult, seq: number, ms: number): void {
    // Replayed calls are already in the log.
    if (rep.state === 'rebuilding') return;
    let d = rep.durations.get(method);
    if (!d) rep.durations.set(method, (d = []));
    d.push(ms);
    if (d.length > RECENT) d.shift();
    const effect = stateEffect(method, payload.meta);
    if (effect === 'changes') {
      rep.replay.record(seq, method, payload.meta, payload.tensors ?? {}, r.metrics);
      if (rep.replay.bytes > this.ctx.opts.replayLogBytes) void this.snapshot(rep);
    } else if (effect === 'snapshot' || effect === 'restores') rep.replay.rebase(String(payload.meta!.dir), seq);
  }

  /** The replay log outgrew its cap: the role saves its state, and the log restarts from there. */
  private async snapshot(rep: Replica): Promise<void> {
    if (rep.snapshotting) return;
    rep.snapshotting = true;
    const previous = rep.replay.base;
    const dir = join(this.host.runDir, 'recovery', `${rep.plan.role}-${rep.plan.replica}`, `snapshot-${++this.snapshots}`);
    try {
      await this.router.call(rep, 'save', { meta: { dir, optimizer: true } });
      this.ctx.opts.onEvent?.({ event: 'role_snapshot', role: rep.plan.role, replica: rep.plan.replica, dir });
      // Only the runtime's own earlier snapshot goes: a trainer's checkpoint is the trainer's.
      if (previous && previous.startsWith(join(this.host.runDir, 'recovery'))) rmSync(previous, { recursive: true, force: true });
    } catch (e) {
      if (!this.ctx.failed && !this.ctx.closing) rep.log.note(`snapshot to ${dir} failed: ${(e as Error).message}`);
    } finally {
      rep.snapshotting = false;
    }
  }

  deadlineFor(rep: Replica, method: string): number {
    const { opts } = this.ctx;
    if (Object.hasOwn(opts.deadlines, method)) return opts.deadlines[method];
    const d = rep.durations.get(method);
    if (!d || d.length < 3) return opts.callTimeoutMs;
    return Math.max(opts.deadlineFloorMs, opts.deadlineFactor * Math.max(...d));
  }

  nodeJoined(): void {
    this.host.nodeJoined();
  }

  nodeMessage(node: RemoteNode, m: Message): void {
    switch (m.kind) {
      case 'hb':
        return;
      case 'rep':
      case 'err':
        return settle(node.pending, m);
      case 'log': {
        const meta = m.meta ?? {};
        const rep = this.router.replica(String(meta.role), Number(meta.replica));
        if (!rep || rep.plan.node !== node.name) return this.ctx.note(`node '${node.name}' sent a log for unknown role ${meta.role}/${meta.replica}`);
        if (meta.event === 'exit') {
          return this.onExit(node.name, {
            role: rep.plan.role, replica: rep.plan.replica, pid: Number(meta.pid), token: String(meta.token),
            code: (meta.code as number | null) ?? null, signal: (meta.signal as string | null) ?? null, spawnError: meta.spawn_error as string | undefined,
          });
        }
        for (const l of asLines(meta.lines)) rep.log.write(l);
        return;
      }
      case 'bye':
        return this.nodeLost(node, 'said bye');
      default:
        this.ctx.note(`refused a '${m.kind}' from node '${node.name}'`);
    }
  }

  // ---- watching ----

  tick(): void {
    const { opts } = this.ctx;
    const now = Date.now();
    // A late tick means this thread was busy: peers' heartbeats are queued unread.
    const late = now - this.lastTick > 2 * opts.heartbeatMs;
    this.lastTick = now;
    for (const peer of this.router.peers.values()) {
      if (late) {
        peer.lastHeard = now;
        if (peer.replica) peer.replica.lastHeard = now;
      }
      if (!peer.beatsOnly) this.router.send(peer, { kind: 'hb', id: 0 });
    }
    if (late) return;
    for (const rep of this.router.all()) {
      const silent = now - rep.lastHeard;
      const serving = rep.state === 'ready' || rep.state === 'rebuilding';
      // Without a heartbeat thread a role is silent while it computes, so only an idle one can be judged.
      if (serving && (rep.beating || rep.pending.size === 0) && silent > opts.peerTimeoutMs) {
        const busy = [...new Set([...rep.pending.values()].map((p) => p.method))];
        this.down(rep, `was silent for ${(silent / 1000).toFixed(1)} s${busy.length ? ` with '${busy.join("', '")}' in flight` : ''} (hung: stopped or frozen)`);
      } else if (rep.state === 'starting' && now - rep.spawnedAt > opts.startTimeoutMs) {
        this.down(rep, `did not say hello within ${opts.startTimeoutMs} ms`);
      }
    }
    for (const node of this.router.nodes.values())
      if (now - node.peer.lastHeard > opts.peerTimeoutMs) this.nodeLost(node, `was silent for ${now - node.peer.lastHeard} ms`);
  }

  onExit(node: string, info: ExitInfo): void {
    const rep = this.router.replica(info.role, info.replica);
    if (!rep || rep.plan.node !== node) return;
    const how = info.spawnError ? `could not start: ${info.spawnError}` : info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
    const current = info.token === rep.token;
    // An earlier process of this replica, or one we stopped or killed ourselves: just record it.
    if (!current || !isLive(rep) || this.ctx.closing) rep.log.note(`pid ${info.pid} ${how}`);
    if (!current) return;
    rep.markExited();
    if (rep.state === 'stopped' || rep.state === 'failed' || this.ctx.closing) {
      rep.state = rep.state === 'failed' ? 'failed' : 'stopped';
      this.router.forgetPeer(rep);
      failAll(rep.pending, new RuntimeError('shutting_down', `${info.role}/${info.replica} stopped`, false));
      return;
    }
    if (info.code === FATAL_EXIT_CODE) {
      // It said why it can never start (a bad file, a missing key): restarting cannot help.
      rep.state = 'failed';
      const lines = rep.log.lastLines(12).filter((l) => !l.startsWith('-- quartet:')).map((l) => '  ' + l).join('\n');
      return this.host.fail(new RuntimeError('run_failed', `role ${info.role}/${info.replica} cannot start (see ${rep.log.file}):\n${lines}`));
    }
    this.down(rep, how);
  }

  /** A replica is dead or hung: stop it, fail its calls as retriable, restart it by its policy or fail the run. */
  down(rep: Replica, why: string): void {
    if (!isLive(rep) || this.ctx.closing || this.ctx.failed) return;
    const name = `${rep.plan.role}/${rep.plan.replica}`;
    rep.downSince ??= Date.now();
    rep.downWhy = why;
    rep.log.note(`${name} (pid ${rep.pid}) ${why}`);
    this.ctx.note(`${name} (pid ${rep.pid}) ${why}`);
    this.ctx.opts.onEvent?.({ event: 'role_down', role: rep.plan.role, replica: rep.plan.replica, why });
    this.router.forgetPeer(rep);
    this.kill(rep);
    if (rep.restarts < rep.plan.maxRestarts) {
      rep.state = 'restarting';
      rep.restarts++;
      failAll(rep.pending, new RuntimeError('role_died', `${name} ${why}; it is restarted (restart ${rep.restarts} of ${rep.plan.maxRestarts}) and the call sent again`, true));
      void rep.exited.then(() => {
        if (!this.ctx.closing && !this.ctx.failed && rep.state === 'restarting') return this.spawn(rep);
      });
      return;
    }
    rep.state = 'failed';
    const lines = rep.log.lastLines(12).map((l) => '  ' + l).join('\n');
    this.host.fail(new RuntimeError('run_failed', `role ${name} ${why}, and it has no restarts left (restarted ${rep.restarts} of ${rep.plan.maxRestarts} times). Last lines of ${rep.log.file}:\n${lines}`));
  }

  private kill(rep: Replica): void {
    if (rep.plan.node === LOCAL_NODE) void this.agent.kill(rep.plan.role, rep.plan.replica);
    else {
      const node = this.router.nodes.get(rep.plan.node);
      if (node) this.router.nodeRequest(node, 'kill', { role: rep.plan.role, replica: rep.plan.replica }, this.ctx.opts.startTimeoutMs).catch(() => {});
      else rep.markExited();
    }
  }

  nodeLost(node: RemoteNode, why: string): void {
    if (this.router.nodes.get(node.name) !== node) return;
    this.router.nodes.delete(node.name);
    this.router.peers.delete(node.peer.key);
    this.ctx.note(`node '${node.name}' ${why}`);
    failAll(node.pending, new RuntimeError('role_died', `node '${node.name}' ${why}`, true));
    for (const rep of this.router.all()) {
      if (rep.plan.node !== node.name) continue;
      rep.markExited();
      if (this.ctx.closing || rep.state === 'stopped') rep.state = 'stopped';
      else {
        rep.plan.maxRestarts = Math.min(rep.plan.maxRestarts, rep.restarts); // its machine is gone: no restart
        this.down(rep, `is lost with its node '${node.name}' (${why})`);
      }
    }
  }
}

function isLive(rep: Replica): boolean {
  return rep.state === 'ready' || rep.state === 'starting' || rep.state === 'rebuilding';
}
