// `npm run bench -- <name> [--json] [args]`: runs one benchmark (or all), or
// `setup`, which makes the repository's .venv with PyTorch for the baselines.
// Each benchmark lives in its own file and exports `run(opts)`.
import type { BenchOptions } from './report.js';

const benches: Record<string, { file: string; what: string }> = {
  engine: { file: './engine.js', what: 'GFLOP/s of the GPT-2-small matrix products, own kernels (and BLAS) vs torch.mm (bench/torch_gemm.py)' },
  kernels: { file: './kernels.js', what: 'the non-GEMM kernels of a GPT-2-small step vs the torch ops (bench/torch_kernels.py)' },
  model: { file: './model.js', what: 'GPT-2 training and KV-cache generation tokens/s and peak RSS vs plain PyTorch (bench/torch_model.py)' },
  runtime: { file: './runtime.js', what: 'role runtime round trips, tensor transfer and all-reduce vs a bare zeromq.js socket pair' },
  ppo: { file: './ppo.js', what: 'one PPO step with the four roles as processes vs a plain-PyTorch PPO step (bench/torch_ppo.py)' },
  recovery: { file: './recovery.js', what: 'kill -9 of each role during PPO: time to serving again and to the end of its step; the replay log\'s cost' },
};

const HELP = `Usage: npm run bench -- <benchmark|all|setup> [--json] [options]

Benchmarks (each prints a table, or with --json one JSON object per row):
${Object.entries(benches).map(([n, b]) => `  ${n.padEnd(8)} ${b.what}`).join('\n')}
  all      every benchmark above, in that order

  setup    create .venv in the repository root and pip install torch and numpy into it
           (--fixtures: also transformers, safetensors, tokenizers, pyarrow for scripts/fixtures/;
           --python PY: the interpreter that makes the venv; --index-url / --extra-index-url URL: for pip)

PyTorch baselines (engine, kernels, model, ppo) run with the first Python of:
  --python PATH, then $QUARTET_TORCH_PYTHON, then .venv/bin/python, then python3
(an explicit --python or $QUARTET_TORCH_PYTHON is the only one tried). Without one,
every row says "no baseline" and why. --no-torch skips the baseline.

Options per benchmark:
  engine   --reps N --min-seconds S --tokens T --lm-tokens T --threads 1,2 --python PY --no-torch
  kernels  --reps N --min-seconds S --threads 1,2 --only SUBSTRING --python PY --no-torch
  model    --threads N --config tiny,gpt2-small --only train,gen --python PY --no-torch
  runtime  (no options)
  ppo      --steps N --layout split|shared --overlap --python PY --no-torch

From a fresh clone: npm install && npm run bench -- setup && npm run bench -- model
More in bench/README.md.`;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const rest = argv.filter((a) => a !== '--json');
  if (rest.includes('--help') || rest.includes('-h') || rest[0] === 'help') {
    console.log(HELP);
    return 0;
  }
  const name = rest[0] && !rest[0].startsWith('-') ? rest.shift()! : 'all';
  if (name === 'setup') {
    const setup = (await import('./setup.js')) as { run(opts: BenchOptions): Promise<void> };
    await setup.run({ json, args: rest });
    return 0;
  }
  const names = name === 'all' ? Object.keys(benches) : [name];
  for (const n of names) {
    const b = benches[n];
    if (!b) {
      console.error(`bench: unknown benchmark '${n}' (have: ${Object.keys(benches).join(', ')}, all, setup; see --help)`);
      return 2;
    }
    const mod = (await import(b.file)) as { run(opts: BenchOptions): Promise<void> };
    await mod.run({ json, args: rest });
  }
  return 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(e instanceof Error && /^(setup|bench)/.test(e.message) ? e.message : e); process.exitCode = 1; });
