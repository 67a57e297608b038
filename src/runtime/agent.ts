// The node agent: spawns role processes with their pinning, hands their
// output lines and exits to whoever supervises (the coordinator in-process,
// or over the wire from `quartet node`), and stops them. One per machine.
import { spawn, type ChildProcess } from 'node:child_process';
import { distPath } from '../util/paths.js';
import type { ReplicaPlan } from './placement.js';
import { startupEnv, type CurveClientKeys } from './startup.js';

export interface SpawnSpec {
  plan: ReplicaPlan;
  /** Per-spawn secret the role's hello must carry. */
  token: string;
  /** The coordinator endpoint the role connects to. */
  endpoint: string;
  curve?: CurveClientKeys;
  heartbeatMs: number;
  coordinatorTimeoutMs: number;
}

export interface ExitInfo {
  role: string;
  replica: number;
  pid: number;
  token: string;
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started at all. */
  spawnError?: string;
}

export interface AgentEvents {
  onLine(role: string, replica: number, line: string): void;
  onExit(info: ExitInfo): void;
}

interface Running { child: ChildProcess; spec: SpawnSpec; exited: Promise<void> }

/**
 * glibc malloc settings for role processes. ZeroMQ receives every message
 * into a fresh malloc'd buffer. By default glibc maps blocks this large
 * afresh and unmaps them on free, so every 64 MB receive page-faults 16k
 * pages (about 2.5 us each on this VM: 40 ms, ten times the copy). Keeping
 * freed memory in the process removes those faults: one arena (ZeroMQ's I/O
 * thread would otherwise get its own, whose heaps cannot hold such a block and
 * fall back to mmap), no mmap for blocks, and no trimming. Measured with
 * `npm run bench -- runtime`: 64 MB one way over ipc 1.6 -> 3.3 GB/s, and
 * 0 faults per receive once warm. The cost is that a role's resident memory
 * stays at its high-water mark, as with any caching allocator; roles are
 * long-lived and reuse the same sizes (the demo's roles peaked at the same
 * RSS either way: actor 347 MB with the policy, 367 MB without). (Transparent huge pages, tried first,
 * were bimodal here: 0.5-3.2 GB/s.) A user's own glibc.malloc.* settings win;
 * other C libraries ignore the variable.
 */
export const ROLE_MALLOC_TUNABLES = [
  'glibc.malloc.arena_max=1',
  'glibc.malloc.mmap_max=0',
  'glibc.malloc.trim_threshold=1099511627776',
];

export function withMallocPolicy(existing: string | undefined): string {
  if (existing && /\bglibc\.malloc\./.test(existing)) return existing;
  return [existing, ...ROLE_MALLOC_TUNABLES].filter(Boolean).join(':');
}

export class NodeAgent {
  private readonly running = new Map<string, Running>();

  constructor(private readonly events: AgentEvents) {}

  /** The argv and environment a replica runs with (exported for tests and docs). */
  static commandFor(spec: SpawnSpec): { argv: string[]; env: Record<string, string> } {
    const p = spec.plan;
    let argv = p.module ? [process.execPath, distPath(p.module)] : [...p.command!];
    if (p.cpus) argv = ['taskset', '-c', p.cpus.join(','), ...argv];
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('QUARTET_')) env[k] = v;
    Object.assign(env, startupEnv({
      endpoint: spec.endpoint, role: p.role, replica: p.replica, token: spec.token, threads: p.threads,
      devices: p.devices, args: p.args, heartbeatMs: spec.heartbeatMs, coordinatorTimeoutMs: spec.coordinatorTimeoutMs,
      parentPid: process.pid, curve: spec.curve,
    }));
    // A role without a cuda device sees none, so it cannot take a GPU by accident.
    env.CUDA_VISIBLE_DEVICES = p.cuda ? p.cuda.join(',') : '';
    // Kernel libraries read these at load time; the role's thread count is the plan's.
    env.OMP_NUM_THREADS = String(p.threads);
    env.GLIBC_TUNABLES = withMallocPolicy(env.GLIBC_TUNABLES);
    return { argv, env };
  }

  /** Starts one replica; returns its pid (taskset execs the role, so the pid is the role's). */
  spawn(spec: SpawnSpec): number {
    const key = `${spec.plan.role}/${spec.plan.replica}`;
    if (this.running.has(key)) throw new Error(`agent: ${key} is already running (pid ${this.running.get(key)!.child.pid})`);
    const { argv, env } = NodeAgent.commandFor(spec);
    // Its own process group, so that stopping it also stops anything it started.
    const child = spawn(argv[0], argv.slice(1), { env, cwd: spec.plan.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const { role, replica } = spec.plan;
    for (const stream of [child.stdout!, child.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const l of lines) this.events.onLine(role, replica, l);
      });
      stream.on('end', () => {
        if (partial) this.events.onLine(role, replica, partial);
        partial = '';
      });
    }
    let spawnError: string | undefined;
    const exited = new Promise<void>((resolve) => {
      child.on('error', (e) => {
        spawnError = e.message;
        if (child.pid === undefined) finish(null, null);
      });
      child.on('exit', (code, signal) => finish(code, signal));
      let done = false;
      const finish = (code: number | null, signal: string | null) => {
        if (done) return;
        done = true;
        if (this.running.get(key)?.child === child) this.running.delete(key);
        // Let the pipes drain what the process wrote last before reporting.
        setTimeout(() => {
          this.events.onExit({ role, replica, pid: child.pid ?? 0, token: spec.token, code, signal, spawnError });
          resolve();
        }, 20);
      };
    });
    this.running.set(key, { child, spec, exited });
    return child.pid ?? 0;
  }

  pids(): number[] {
    return [...this.running.values()].map((r) => r.child.pid!).filter(Boolean);
  }

  /** Sends a signal to a replica's process group; resolves when it has exited (or at once if not running). */
  async kill(role: string, replica: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const r = this.running.get(`${role}/${replica}`);
    if (!r) return;
    signalGroup(r.child, signal);
    await r.exited;
  }

  /** SIGTERM to every role, SIGKILL to those still there after graceMs; resolves when all are gone. */
  async stopAll(graceMs: number): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) signalGroup(r.child, 'SIGTERM');
    const timer = setTimeout(() => { for (const r of all) signalGroup(r.child, 'SIGKILL'); }, graceMs);
    await Promise.all(all.map((r) => r.exited));
    clearTimeout(timer);
  }

  /** Last resort at process exit: no orphans even if stopAll never ran. */
  killAllNow(): void {
    for (const r of this.running.values()) signalGroup(r.child, 'SIGKILL');
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try { child.kill(signal); } catch { /* already gone */ }
  }
}

