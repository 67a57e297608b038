// Where the benchmarks find PyTorch for their baselines, and how they run this
// folder's baseline scripts (bench/torch_*.py; each reads a JSON spec on stdin
// and prints one JSON object per line, see bench/torch_common.py).
//
// The Python is chosen in this order (bench/README.md):
//   1. --python PATH on the command line,
//   2. the environment variable QUARTET_TORCH_PYTHON,
//   3. .venv/bin/python in the repository root (`npm run bench -- setup` makes it),
//   4. python3 on PATH.
// A Python named explicitly (1 or 2) is the only one tried: if it has no torch,
// the benchmark says so rather than quietly timing another one. Otherwise the
// first of 3 and 4 that imports torch is used. When none does, every row of the
// benchmark says "no baseline" and why (see Reporter.noBaseline).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from '../src/util/paths.js';
import type { Timing } from './timing.js';

/** The project's virtualenv, made by `npm run bench -- setup`. */
export const VENV_DIR = join(repoRoot, '.venv');
export const VENV_PYTHON = join(VENV_DIR, 'bin', 'python');
export const PYTHON_ENV_VAR = 'QUARTET_TORCH_PYTHON';

/**
 * The environment of every PyTorch baseline process ("tuned", as bench/README.md explains).
 * Passive OpenMP waiting matters most: on a shared machine a spinning thread pool turns every
 * small (decode-sized) kernel into a wait for the scheduler (measured: KV-cache generation 15x
 * slower without it). The malloc settings keep freed tensors in the heap instead of returning
 * them to the kernel (page faults are dear in these VMs).
 */
export const TUNED_ENV = { OMP_WAIT_POLICY: 'PASSIVE', MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '17179869184' };

/** The environment for a baseline process with `threads` threads: set before torch is imported. */
export function torchEnv(threads: number): NodeJS.ProcessEnv {
  return { ...process.env, ...TUNED_ENV, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
}

/** The Python with torch that the baselines use, or why there is none. */
export type TorchPython = { ok: true; python: string; version: string } | { ok: false; why: string };

/** The candidates in order, with where each came from. */
export function pythonCandidates(python: string | null = null): Array<{ python: string; from: string }> {
  if (python) return [{ python, from: '--python' }];
  const env = process.env[PYTHON_ENV_VAR];
  if (env) return [{ python: env, from: PYTHON_ENV_VAR }];
  return [
    { python: VENV_PYTHON, from: 'the repository .venv' },
    { python: 'python3', from: 'PATH' },
  ];
}

/** A Python's path as printed: relative to the repository root when inside it. */
export const shown = (py: string) => (py.startsWith(repoRoot + '/') ? relative(repoRoot, py) : py);

/** Tries the candidates in order; the first that imports torch, or a sentence naming each one tried and why it failed. */
export function resolveTorchPython(python: string | null = null): TorchPython {
  const tried: string[] = [];
  for (const c of pythonCandidates(python)) {
    if (c.python.includes('/') && !existsSync(c.python)) {
      tried.push(`${shown(c.python)} (${c.from}): not found`);
      continue;
    }
    const r = spawnSync(c.python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0) return { ok: true, python: c.python, version: r.stdout.trim() };
    const why = r.error ? (r.error as NodeJS.ErrnoException).code ?? r.error.message : /No module named/.test(r.stderr) ? 'no torch' : `exit ${r.status}`;
    tried.push(`${shown(c.python)} (${c.from}): ${why === 'ENOENT' ? 'not found' : why}`);
  }
  const hint = python || process.env[PYTHON_ENV_VAR] ? '' : '; run `npm run bench -- setup`';
  return { ok: false, why: `no Python with torch: tried ${tried.join(', ')}${hint}` };
}

/** The baseline's state for one benchmark, resolved once; logs which Python it uses on stderr. */
export function torchForBench(bench: string, python: string | null, wanted = true): TorchPython {
  if (!wanted) return { ok: false, why: '--no-torch' };
  const t = resolveTorchPython(python);
  if (t.ok) console.error(`bench ${bench}: PyTorch ${t.version} from ${shown(t.python)}`);
  else console.error(`bench ${bench}: ${t.why}`);
  return t;
}

/**
 * Runs bench/<script> with `py`, `spec` as JSON on stdin and `env`; its JSON output lines.
 * Throws with the script's stderr when it fails.
 */
export function runTorchScript(py: string, script: string, spec: object, env: NodeJS.ProcessEnv = process.env): Record<string, unknown>[] {
  const r = spawnSync(py, [join(repoRoot, 'bench', script)], {
    input: JSON.stringify(spec), encoding: 'utf8', timeout: 1_800_000, maxBuffer: 1 << 24, env,
  });
  if (r.status !== 0) {
    const err = (r.stderr || r.error?.message || '').trim().split('\n').slice(-5).join('\n');
    throw new Error(`bench/${script} failed (status ${r.status}): ${err}`);
  }
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Runs bench/<script> (engine, kernels) with `spec`; its timings keyed by `${name}|${threads}`,
 * or the reason there are none (no torch, or the script failed).
 */
export function torchBaseline(bench: string, script: string, spec: object, t: TorchPython): Map<string, Timing> | { why: string } {
  if (!t.ok) return { why: t.why };
  let lines: Record<string, unknown>[];
  try {
    lines = runTorchScript(t.python, script, spec);
  } catch (e) {
    console.error(`bench ${bench}: ${(e as Error).message}`);
    return { why: `bench/${script} failed (see stderr)` };
  }
  const out = new Map<string, Timing>();
  for (const m of lines as Array<{ name: string; threads: number; seconds: number; median: number; cpu_seconds: number }>) {
    out.set(`${m.name}|${m.threads}`, { best: m.seconds, median: m.median, cpu: m.cpu_seconds });
  }
  return out;
}
