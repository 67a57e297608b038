// The shared base of every JavaScript role process: read the start-up
// variables once, connect a DEALER to the coordinator, say hello, serve the
// role's methods, heartbeat, and exit cleanly on bye, SIGTERM, or when the
// coordinator (or the parent agent) is gone. A role file in actors/ only
// maps method names to async functions:
//
//   serveRole((ctx) => ({ methods: { score: async (req) => ({ tensors }) } }));
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { decode, encode, RuntimeError, type Message, type Meta, type Metrics } from './protocol.js';
import { SendQueue, SOCKET_BUFFER_BYTES } from './send-queue.js';
import { readStartup, type RoleStartup } from './startup.js';
import type { Tensors } from './wire.js';

export interface Request {
  method: string;
  meta: Meta;
  tensors: Tensors;
  /** How long the caller still waits, in ms, when it set a deadline. */
  timeoutMs?: number;
}

export interface Reply {
  meta?: Meta;
  tensors?: Tensors;
  metrics?: Metrics;
}

export type Method = (req: Request) => Promise<Reply | void> | Reply | void;

/** What a role learns from its placement; secrets and plumbing stay in the server. */
export interface RoleContext {
  role: string;
  replica: number;
  /** Kernel threads for this role: pass to native.setThreads. */
  threads: number;
  devices: string[];
  args: Record<string, unknown>;
}

export interface RoleSetup {
  methods: Record<string, Method>;
  /** Run once before the process exits (bye, SIGTERM or a `shutdown` request). */
  onShutdown?: () => Promise<void> | void;
  /** Extra fields for the `stats` method (memory, threads and devices are always there). */
  stats?: () => Meta;
  /** Serve requests concurrently (default: one at a time, in arrival order). */
  concurrent?: boolean;
}

const BUILTIN = ['ping', 'stats', 'shutdown'];

/**
 * The exit code of a role that cannot start and never will (a bad model file,
 * a missing config key): the supervisor does not restart it and shows its
 * message. 78 is sysexits' EX_CONFIG.
 */
export const FATAL_EXIT_CODE = 78;

/** Starts the role and serves until shutdown; the process exits at the end. */
export async function serveRole(setup: RoleSetup | ((ctx: RoleContext) => RoleSetup | Promise<RoleSetup>)): Promise<never> {
  const s = readStartup(process.env);
  const ctx: RoleContext = { role: s.role, replica: s.replica, threads: s.threads, devices: s.devices, args: s.args };
  let def: RoleSetup;
  try {
    def = typeof setup === 'function' ? await setup(ctx) : setup;
    for (const name of Object.keys(def.methods))
      if (BUILTIN.includes(name)) throw new Error(`serveRole: method '${name}' is built in and cannot be redefined`);
  } catch (e) {
    // Setting up is loading files and checking arguments: what fails here fails again on a restart.
    process.stderr.write(`${s.role}/${s.replica} cannot start: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(FATAL_EXIT_CODE);
  }
  return new RoleServer(s, def).run();
}

class RoleServer {
  private readonly sock: zmq.Dealer;
  private readonly out: SendQueue;
  private readonly sender: string;
  private lastHeard = Date.now();
  private lastTick = Date.now();
  private chain: Promise<void> = Promise.resolve();
  private calls = 0;
  private stopping: Promise<never> | null = null;
  private readonly started = Date.now();

  constructor(private readonly s: RoleStartup, private readonly def: RoleSetup) {
    this.sender = `${s.role}/${s.replica}`;
    this.sock = new zmq.Dealer({ linger: 2000, sendBufferSize: SOCKET_BUFFER_BYTES, receiveBufferSize: SOCKET_BUFFER_BYTES });
    if (s.curve) {
      this.sock.curveServerKey = s.curve.serverKey;
      this.sock.curvePublicKey = s.curve.publicKey;
      this.sock.curveSecretKey = s.curve.secretKey;
    }
    this.out = new SendQueue(this.sock);
  }

  async run(): Promise<never> {
    process.on('SIGTERM', () => void this.stop(0, 'SIGTERM'));
    process.on('SIGINT', () => void this.stop(0, 'SIGINT'));
    this.sock.connect(this.s.endpoint);
    await this.send('hello', 0, {
      meta: {
        role: this.s.role, replica: this.s.replica, token: this.s.token, pid: process.pid, host: hostname(),
        devices: this.s.devices, threads: this.s.threads,
        capabilities: { methods: [...BUILTIN, ...Object.keys(this.def.methods)], language: 'javascript', heartbeat_thread: true },
      },
    });
    const timer = setInterval(() => this.tick(), this.s.heartbeatMs);
    this.startHeartbeatThread();
    try {
      for await (const frames of this.sock) this.onFrames(frames);
    } catch (e) {
      if (!this.sock.closed) this.log(`receive failed: ${(e as Error).message}`);
    }
    clearInterval(timer);
    return this.stopping ?? this.stop(1, 'socket closed');
  }

  /**
   * Beats from a thread of its own, on a second connection: a method that
   * holds the main thread for minutes (a long kernel) does not silence it, so
   * the coordinator can tell a busy role from a stopped or frozen one.
   */
  private startHeartbeatThread(): void {
    const w = new Worker(new URL('./heartbeat-thread.js', import.meta.url), {
      workerData: { endpoint: this.s.endpoint, curve: this.s.curve ?? null, role: this.s.role, replica: this.s.replica, token: this.s.token, heartbeatMs: this.s.heartbeatMs, sender: this.sender },
    });
    w.on('error', (e) => this.log(`heartbeat thread failed: ${e.message}`));
    w.unref();
  }

  private tick(): void {
    const now = Date.now();
    // A tick that comes late means this thread was busy (a long method): the
    // coordinator's heartbeats are still queued unread, so silence proves nothing.
    if (now - this.lastTick > 2 * this.s.heartbeatMs) this.lastHeard = now;
    this.lastTick = now;
    if (this.s.parentPid && process.ppid !== this.s.parentPid) return void this.stop(1, `parent ${this.s.parentPid} is gone`);
    if (now - this.lastHeard > this.s.coordinatorTimeoutMs) return void this.stop(1, `no word from the coordinator for ${now - this.lastHeard} ms`);
    void this.send('hb', 0, {}).catch(() => {});
  }

  private onFrames(frames: Buffer[]): void {
    this.lastHeard = Date.now();
    const d = decode(frames);
    if (!d.ok) {
      this.log(`refused a message: ${d.error.message}`);
      if (d.id) void this.send('err', d.id, { error: d.error.toValue() }).catch(() => {});
      return;
    }
    const m = d.msg;
    switch (m.kind) {
      case 'ready':
      case 'hb':
        return;
      case 'bye':
        return void this.stop(0, 'bye from the coordinator');
      case 'err':
        // The only err a role receives unasked is the refusal of its hello.
        this.log(`coordinator refused us: ${m.error!.code}: ${m.error!.message}`);
        return void this.stop(2, 'refused');
      case 'req':
        return this.onRequest(m);
      default:
        this.log(`ignored a '${m.kind}' message`);
    }
  }

  private onRequest(m: Message): void {
    const run = () => this.handle(m);
    if (this.def.concurrent || m.method === 'ping' || m.method === 'stats') void run();
    else this.chain = this.chain.then(run);
  }

  private async handle(m: Message): Promise<void> {
    this.calls++;
    const method = m.method!;
    try {
      let reply: Reply | void;
      if (method === 'ping') reply = { meta: { pid: process.pid } };
      else if (method === 'stats') reply = { meta: this.stats() };
      else if (method === 'shutdown') {
        await this.send('rep', m.id, {});
        return void this.stop(0, 'shutdown request');
      } else {
        // Own properties only: 'constructor' or 'toString' are not methods of a role.
        const fn = Object.hasOwn(this.def.methods, method) ? this.def.methods[method] : undefined;
        if (!fn) throw new RuntimeError('unknown_method', `role '${this.s.role}' has no method '${method}' (has ${[...BUILTIN, ...Object.keys(this.def.methods)].join(', ')})`);
        reply = await fn({ method, meta: m.meta ?? {}, tensors: m.data, timeoutMs: m.timeout_ms });
      }
      const r = reply ?? {};
      await this.send('rep', m.id, { meta: r.meta, metrics: r.metrics }, r.tensors);
    } catch (e) {
      // The caller gets the message; the stack goes to the role's log, where a developer looks for it.
      const err = e instanceof RuntimeError ? e : new RuntimeError('method_failed', `${method}: ${e instanceof Error ? e.message : String(e)}`);
      if (!(e instanceof RuntimeError)) this.log(`${method} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      await this.send('err', m.id, { error: err.toValue() }).catch(() => {});
    }
  }

  private stats(): Meta {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const usage = process.resourceUsage();
    return {
      pid: process.pid, role: this.s.role, replica: this.s.replica, threads: this.s.threads, devices: this.s.devices,
      rss: mem.rss, heap_used: mem.heapUsed, external: mem.external, cpu_user_s: cpu.user / 1e6, cpu_system_s: cpu.system / 1e6, page_faults: usage.minorPageFault + usage.majorPageFault, calls: this.calls, uptime_s: (Date.now() - this.started) / 1000,
      ...(this.def.stats?.() ?? {}),
    };
  }

  private send(kind: 'hello' | 'hb' | 'rep' | 'err' | 'bye', id: number, fields: { meta?: Meta; metrics?: Metrics; error?: ReturnType<RuntimeError['toValue']> }, tensors?: Tensors): Promise<void> {
    return this.out.send(encode({ kind, id, sender: this.sender, ...fields }, tensors));
  }

  private log(line: string): void {
    process.stderr.write(`[quartet role ${this.sender}] ${line}\n`);
  }

  private stop(code: number, why: string): Promise<never> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (code !== 0 || why !== 'bye from the coordinator') this.log(`stopping: ${why}`);
      try {
        await this.def.onShutdown?.();
      } catch (e) {
        this.log(`onShutdown failed: ${(e as Error).message}`);
        code = code || 1;
      }
      // Tell the coordinator this exit is deliberate; linger delivers it.
      if (code === 0) await Promise.race([this.send('bye', 0, {}).catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
      this.sock.close();
      process.exit(code);
    })();
    return this.stopping;
  }
}
