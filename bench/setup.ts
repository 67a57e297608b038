// `npm run bench -- setup [--python PY] [--fixtures] [--cpu-index URL|none] [--index-url URL] [--extra-index-url URL]`:
// makes the repository's own Python for the PyTorch baselines, `.venv` in the
// repository root (git-ignored), which the benchmarks then find by themselves
// (bench/torch-python.ts):
//   1. `PY -m venv .venv` when there is none (PY: --python, else python3);
//   2. picks the CPU build of torch: the newest `+cpu` version that pip can see
//      (`pip index versions torch`) through its own configuration (a local
//      mirror, if the machine has one), else through PyTorch's CPU wheel index
//      as an extra index (--cpu-index, default https://download.pytorch.org/whl/cpu;
//      `none` to leave it out). Where none is listed (macOS, or offline), plain `torch`;
//   3. `.venv/bin/python -m pip install torch==<that> numpy`, plus with --fixtures
//      what the scripts of scripts/fixtures/ import (transformers, safetensors,
//      tokenizers, pyarrow). --index-url / --extra-index-url go to pip as they are.
// It says what it did, and which Python the benchmarks will use.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { repoRoot } from '../src/util/paths.js';
import type { BenchOptions } from './report.js';
import { PYTHON_ENV_VAR, VENV_DIR, VENV_PYTHON, resolveTorchPython, shown } from './torch-python.js';

export const BASELINE_PACKAGES = ['torch', 'numpy'];
export const FIXTURE_PACKAGES = ['transformers', 'safetensors', 'tokenizers', 'pyarrow'];
/** PyTorch's own index of CPU-only wheels (Linux and Windows builds tagged `+cpu`). */
export const CPU_INDEX = 'https://download.pytorch.org/whl/cpu';

/** The newest `+cpu` torch that pip lists with these arguments, or null. */
function cpuTorch(py: string, pipArgs: string[]): string | null {
  const r = spawnSync(py, ['-m', 'pip', 'index', 'versions', 'torch', ...pipArgs], { encoding: 'utf8', cwd: repoRoot, timeout: 600_000 });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('Available versions:'));
  const cpu = (line ?? '').replace('Available versions:', '').split(',').map((v) => v.trim()).filter((v) => v.endsWith('+cpu'));
  return cpu[0] ?? null; // pip lists the newest first
}

function step(what: string, cmd: string, args: string[]): void {
  console.log(`setup: ${what}\n  $ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: repoRoot });
  if (r.error) throw new Error(`setup: ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`setup: '${[cmd, ...args].join(' ')}' failed with status ${r.status}`);
}

export async function run(opts: BenchOptions): Promise<void> {
  let base = 'python3';
  let fixtures = false;
  let cpuIndex: string | null = CPU_INDEX;
  const pipArgs: string[] = [];
  for (let i = 0; i < opts.args.length; i++) {
    const a = opts.args[i];
    if (a === 'setup') continue;
    if (a === '--python') base = opts.args[++i] ?? base;
    else if (a === '--fixtures') fixtures = true;
    else if (a === '--cpu-index') {
      const v = opts.args[++i];
      if (!v) throw new Error('setup: --cpu-index needs a URL or none');
      cpuIndex = v === 'none' ? null : v;
    }
    else if (a === '--index-url' || a === '--extra-index-url') {
      const v = opts.args[++i];
      if (!v) throw new Error(`setup: ${a} needs a URL`);
      pipArgs.push(a, v);
    } else throw new Error(`setup: unknown option '${a}' (have --python, --fixtures, --cpu-index, --index-url, --extra-index-url)`);
  }
  const venv = relative(repoRoot, VENV_DIR);
  const py = relative(repoRoot, VENV_PYTHON);
  if (existsSync(VENV_PYTHON)) console.log(`setup: ${venv} exists; installing into it`);
  else step(`creating ${venv} with ${base}`, base, ['-m', 'venv', venv]);
  const packages = [...BASELINE_PACKAGES, ...(fixtures ? FIXTURE_PACKAGES : [])];
  // A CPU build that pip's own configuration already offers (a local mirror) first; only
  // then PyTorch's CPU index (on a machine that reads PyPI, where Linux torch has CUDA).
  let args = pipArgs;
  console.log('setup: looking for a CPU build of torch (pip index versions torch)');
  let cpu = cpuTorch(py, args);
  if (!cpu && cpuIndex) {
    args = [...pipArgs, '--extra-index-url', cpuIndex];
    console.log(`setup: none in pip's configuration; looking again with --extra-index-url ${cpuIndex}`);
    cpu = cpuTorch(py, args);
  }
  console.log(cpu
    ? `setup: the newest CPU build pip can see is torch ${cpu}`
    : 'setup: pip lists no +cpu build of torch; installing plain torch (on Linux from PyPI that is the CUDA build: pass --cpu-index or --index-url for a CPU one)');
  const specs = packages.map((p) => (p === 'torch' && cpu ? `torch==${cpu}` : p));
  step(`installing ${specs.join(', ')} into ${venv}`, py, ['-m', 'pip', 'install', ...args, ...specs]);
  const versions = spawnSync(py, ['-c', `import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) for p in ${JSON.stringify(packages)}))`], { encoding: 'utf8', cwd: repoRoot });
  console.log(`setup: ${venv} has ${versions.stdout.trim() || '(could not list versions)'}`);
  const t = resolveTorchPython();
  if (t.ok) {
    const note = process.env[PYTHON_ENV_VAR] ? ` (${PYTHON_ENV_VAR} is set and wins over ${venv})` : '';
    console.log(`setup: done; the benchmarks' PyTorch baselines will use ${shown(t.python)} (torch ${t.version})${note}`);
  } else {
    throw new Error(`setup: installed, but ${t.why}`);
  }
}
