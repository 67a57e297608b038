// The node agent of another machine (`quartet node`): joins the coordinator
// over tcp with CURVE, spawns the roles the coordinator places here (they
// connect to the coordinator themselves, with the same keys), forwards their
// output and exits, and stops them all when the coordinator says bye or goes
// silent. A run of several training steps opens one coordinator per step at
// the same address: their bye says `again`, and the agent joins the next.
import { hostname } from 'node:os';
import * as zmq from 'zeromq';
import { NodeAgent } from './agent.js';
import { allowedCpus, type ReplicaPlan } from './placement.js';
import { decode, encode, RuntimeError, type Header, type Message, type Meta } from './protocol.js';
import { SendQueue } from './send-queue.js';
import type { CurveClientKeys } from './startup.js';

export interface NodeOptions {
  /** tcp://HOST:PORT of the coordinator. */
  coordinator: string;
  keys: CurveClientKeys;
  /** The name plans use in `node:`. */
  name: string;
  /** How long to wait for the coordinator to accept the hello. */
  joinTimeoutMs?: number;
  /** After a bye that says the run goes on, how long to wait for the next coordinator (default 10 minutes). */
  rejoinTimeoutMs?: number;
  /** Where the agent's own messages go (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Runs until the coordinator says bye (resolves 0) or is lost (resolves 1).
 * A bye that says `again` (the end of one training step of a run with more to
 * come) is followed by joining the next coordinator at the same address.
 */
export async function runNode(o: NodeOptions): Promise<number> {
  const log = o.log ?? ((l: string) => process.stderr.write(`[quartet node ${o.name}] ${l}\n`));
  // The session's send; the agent's events go through whichever session is current.
  let send: (h: Omit<Header, 'version' | 'sender'>) => Promise<void> = async () => {};
  const agent = new NodeAgent({
    onLine: (role, replica, line) => void send({ kind: 'log', id: 0, meta: { role, replica, lines: [line] } }),
    onExit: (x) => void send({ kind: 'log', id: 0, meta: { event: 'exit', role: x.role, replica: x.replica, pid: x.pid, token: x.token, code: x.code, signal: x.signal, spawn_error: x.spawnError } }),
  });
  // A signal stops the current session; one that comes between two sessions stops before the next.
  let signalled: (() => void) | null = null, interrupted = false;
  const onSignal = () => {
    interrupted = true;
    signalled?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const onExit = () => agent.killAllNow();
  process.on('exit', onExit);
  try {
    let deadline = Date.now() + (o.joinTimeoutMs ?? 30_000);
    for (;;) {
      if (interrupted) return 0;
      const r = await session(o, agent, log, Math.max(1, deadline - Date.now()), (s) => (send = s), (f) => (signalled = f));
      if (interrupted) return typeof r === 'number' ? r : 0;
      if (r === 'again') {
        log('the coordinator will be back for the next step of the run; rejoining');
        deadline = Date.now() + (o.rejoinTimeoutMs ?? 600_000);
      } else if (r === 'retry') await new Promise((res) => setTimeout(res, 250));
      else return r;
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('exit', onExit);
  }
}

/**
 * One coordinator's time: join, serve spawn and kill, until bye (0, or
 * 'again' when the run goes on), loss (1), or a retriable refusal of the
 * hello ('retry': the coordinator of the step before, still closing).
 */
async function session(o: NodeOptions, agent: NodeAgent, log: (line: string) => void, joinTimeoutMs: number,
  setSend: (send: (h: Omit<Header, 'version' | 'sender'>) => Promise<void>) => void, onSignal: (stop: () => void) => void): Promise<number | 'again' | 'retry'> {
  const sock = new zmq.Dealer({ linger: 1000, curveServerKey: o.keys.serverKey, curvePublicKey: o.keys.publicKey, curveSecretKey: o.keys.secretKey });
  const out = new SendQueue(sock);
  const sender = `node/${o.name}`;
  const send = (h: Omit<Header, 'version' | 'sender'>) => out.send(encode({ ...h, sender })).catch(() => {});
  setSend(send);
  let heartbeatMs = 500, coordinatorTimeoutMs = 30_000;
  let joined = false, lastHeard = Date.now(), lastTick = Date.now();
  let finish!: (code: number | 'again' | 'retry') => void;
  const done = new Promise<number | 'again' | 'retry'>((r) => (finish = r));

  let stopping = false;
  const stop = async (code: number | 'again' | 'retry', why: string) => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    await agent.stopAll(3000);
    if (code === 0) await send({ kind: 'bye', id: 0 });
    finish(code);
  };
  onSignal(() => void stop(0, 'signal'));

  const handle = async (m: Message) => {
    const meta = m.meta ?? {};
    try {
      let result: Meta = {};
      if (m.method === 'spawn') {
        // The plan's cwd is a folder of the coordinator's machine.
        const { cwd: _cwd, ...plan } = meta.plan as ReplicaPlan;
        const pid = agent.spawn({
          plan, token: String(meta.token), endpoint: o.coordinator, curve: o.keys,
          heartbeatMs: Number(meta.heartbeat_ms) || heartbeatMs, coordinatorTimeoutMs: Number(meta.coordinator_timeout_ms) || coordinatorTimeoutMs,
        });
        log(`started ${plan.role}/${plan.replica} as pid ${pid}`);
        result = { pid };
      } else if (m.method === 'kill') {
        await agent.kill(String(meta.role), Number(meta.replica));
      } else throw new RuntimeError('unknown_method', `node agents serve spawn and kill, not '${m.method}'`);
      await send({ kind: 'rep', id: m.id, meta: result });
    } catch (e) {
      const err = e instanceof RuntimeError ? e : new RuntimeError('method_failed', (e as Error).message);
      await send({ kind: 'err', id: m.id, error: err.toValue() });
    }
  };

  const receive = async () => {
    try {
      for await (const frames of sock) {
        lastHeard = Date.now();
        const d = decode(frames);
        if (!d.ok) {
          log(`refused a message: ${d.error.message}`);
          continue;
        }
        const m = d.msg;
        if (m.kind === 'ready') {
          joined = true;
          heartbeatMs = Number(m.meta?.heartbeat_ms) || heartbeatMs;
          coordinatorTimeoutMs = Number(m.meta?.coordinator_timeout_ms) || coordinatorTimeoutMs;
          log(`joined ${o.coordinator}`);
        } else if (m.kind === 'err' && !joined && m.error?.retriable) {
          void stop('retry', `not yet: ${m.error.message}`);
        } else if (m.kind === 'err') {
          log(`coordinator refused us: ${m.error!.message}`);
          void stop(2, 'refused');
        } else if (m.kind === 'req') void handle(m);
        else if (m.kind === 'bye') void stop(m.meta?.again === true ? 'again' : 0, 'bye from the coordinator');
      }
    } catch (e) {
      if (!sock.closed) log(`receive failed: ${(e as Error).message}`);
    }
  };

  // A closed connection means the coordinator process is gone (the kernel
  // closes its sockets even on SIGKILL); silence covers a lost machine.
  const watch = async () => {
    try {
      for await (const ev of sock.events) if (ev.type === 'disconnect' && joined) void stop(1, 'the connection to the coordinator closed');
    } catch { /* socket closed */ }
  };
  sock.connect(o.coordinator);
  void receive();
  void watch();
  // coordinator: the address this machine reaches it by, where its replicas of a group across machines find the group's relay.
  // Not awaited: the send waits for a connection, and the join timeout below must run meanwhile.
  void send({ kind: 'hello', id: 0, meta: { role: 'node', name: o.name, pid: process.pid, host: hostname(), cpus: allowedCpus(), coordinator: o.coordinator } });
  const started = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    if (now - lastTick > 2 * heartbeatMs) lastHeard = now;
    lastTick = now;
    if (!joined) {
      if (now - started > joinTimeoutMs) void stop(1, `the coordinator at ${o.coordinator} did not accept us within ${joinTimeoutMs} ms (wrong address, or keys of another run?)`);
      return;
    }
    if (now - lastHeard > coordinatorTimeoutMs) void stop(1, `no word from the coordinator for ${now - lastHeard} ms`);
    else void send({ kind: 'hb', id: 0 });
  }, heartbeatMs);

  const code = await done;
  clearInterval(timer);
  sock.close();
  return code;
}
