// Where the benchmarks find PyTorch for their baselines: a Python that imports
// torch, the shared plain-PyTorch reference (torch_ref.py), and the runner of
// this folder's own baseline scripts (bench/torch_*.py), which read a JSON spec
// on stdin and print one timing per line (bench/torch_common.py).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../src/util/paths.js';
import type { Timing } from './timing.js';

/** The plain-PyTorch GPT-2 and PPO step that the model and ppo benchmarks compare with. */
export const TORCH_REF = '/work/shared/bench/torch_ref.py';

/**
 * torch_ref.py's `--env tuned` for its children; the same for ours. Passive OpenMP waiting
 * matters most: on a shared machine a spinning thread pool turns every small (decode-sized)
 * kernel into a wait for the scheduler (measured: KV-cache generation 15x slower without it).
 */
export const TUNED_ENV = { OMP_WAIT_POLICY: 'PASSIVE', MALLOC_MMAP_MAX_: '0', MALLOC_TRIM_THRESHOLD_: '17179869184' };

/** The Pythons tried in order: the one given (--python), else the project's virtualenv, then python3 on PATH. */
export function pythonCandidates(python: string | null = null): string[] {
  return python ? [python] : ['/work/venv/bin/python', 'python3'];
}

/** The first candidate that imports torch, or null. */
export function findTorchPython(python: string | null = null): string | null {
  for (const py of pythonCandidates(python)) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return null;
}

/** A Python to run torch_ref.py with, or null after a note on stderr that `bench` skips its baseline. */
export function torchRefPython(bench: string): string | null {
  if (!existsSync(TORCH_REF)) {
    console.error(`bench ${bench}: no ${TORCH_REF}: the PyTorch baseline is skipped`);
    return null;
  }
  const py = findTorchPython();
  if (!py) console.error(`bench ${bench}: no Python with torch (tried ${pythonCandidates().join(', ')}): the PyTorch baseline is skipped`);
  return py;
}

/**
 * Runs bench/<script> with `spec` as JSON on stdin; its timings keyed by
 * `${name}|${threads}`, or null after a note on stderr when there is no torch
 * or the script fails (the benchmark then runs without the baseline).
 */
export function torchBaseline(bench: string, script: string, spec: object, python: string | null): Map<string, Timing> | null {
  const py = findTorchPython(python);
  if (!py) {
    console.error(`bench ${bench}: no Python with torch found (tried ${pythonCandidates(python).join(', ')}); skipping the PyTorch baseline`);
    return null;
  }
  const r = spawnSync(py, [join(repoRoot, 'bench', script)], {
    input: JSON.stringify(spec), encoding: 'utf8', timeout: 1_800_000, maxBuffer: 1 << 24,
  });
  if (r.status !== 0) {
    console.error(`bench ${bench}: bench/${script} failed (status ${r.status}): ${r.stderr || r.error?.message}; skipping the PyTorch baseline`);
    return null;
  }
  const out = new Map<string, Timing>();
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const m = JSON.parse(line) as { name: string; threads: number; seconds: number; median: number; cpu_seconds: number };
    out.set(`${m.name}|${m.threads}`, { best: m.seconds, median: m.median, cpu: m.cpu_seconds });
  }
  return out;
}
