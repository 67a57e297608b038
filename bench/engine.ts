// `npm run bench -- engine [--json] [options]`: GFLOP/s of the matrix products of
// GPT-2 small (tokens 2048, C 768) — QKV, attention projection, MLP up and down,
// and the LM head against V = 50257 — forward (y = x W^T, W stored [out, in] as
// torch's nn.Linear) and the two backward products (dX = dY W, dW = dY^T X), with
// 1 and 2 threads, for the project's own kernels and for the BLAS where one is
// compiled in; and the same products in PyTorch, measured in the same run by
// bench/torch_gemm.py when a Python with torch is found (ratio).
//
// Options: --reps N (most timed runs per product, default 5), --min-seconds S
// (keep timing a product until S seconds or N runs, default 1), --tokens T (2048),
// --lm-tokens T (rows of the LM-head products, default 512 to keep the run short),
// --threads 1,2, --python PATH, --no-torch.
// Each figure is the best run; the median is shown beside it, as the machine may be
// shared, and with one thread also the GFLOP/s over the best process CPU time
// (cpu_gflops, torch_cpu_gflops), which time spent descheduled does not spoil.
import { native } from '../src/native.js';
import { Reporter, type BenchOptions } from './report.js';
import { timeRuns, type Timing } from './timing.js';
import { torchBaseline, torchForBench } from './torch-python.js';

interface Product {
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

interface Settings {
  reps: number;
  minSeconds: number;
  tokens: number;
  lmTokens: number;
  threads: number[];
  python: string | null;
  torch: boolean;
}

const DEFAULTS: Settings = { reps: 5, minSeconds: 1, tokens: 2048, lmTokens: 512, threads: [1, 2], python: null, torch: true };

function parseArgs(args: string[]): Settings {
  const s: Settings = { ...DEFAULTS, threads: [...DEFAULTS.threads] };
  const positive = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`bench engine: ${flag} needs a positive number, got '${v ?? ''}'`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === 'engine') continue;
    if (a === '--reps') s.reps = Math.round(positive(a, args[++i]));
    else if (a === '--min-seconds') s.minSeconds = positive(a, args[++i]);
    else if (a === '--tokens') s.tokens = Math.round(positive(a, args[++i]));
    else if (a === '--lm-tokens') s.lmTokens = Math.round(positive(a, args[++i]));
    else if (a === '--threads') s.threads = (args[++i] ?? '').split(',').map((t) => Math.round(positive(a, t)));
    else if (a === '--python') s.python = args[++i] ?? null;
    else if (a === '--no-torch') s.torch = false;
    else throw new Error(`bench engine: unknown option '${a}' (have --reps, --min-seconds, --tokens, --lm-tokens, --threads, --python, --no-torch)`);
  }
  return s;
}

/** The three products of one linear layer x [T, inp] -> y [T, out] with W [out, inp]. */
function linearProducts(layer: string, T: number, inp: number, out: number): Product[] {
  return [
    { name: `gemm ${layer} ${T}x${out}x${inp} fwd`, M: T, N: out, K: inp, transA: false, transB: true },
    { name: `gemm ${layer} ${T}x${inp}x${out} dX`, M: T, N: inp, K: out, transA: false, transB: false },
    { name: `gemm ${layer} ${out}x${inp}x${T} dW`, M: out, N: inp, K: T, transA: true, transB: false },
  ];
}

function gpt2Products(s: Settings): Product[] {
  const C = 768, V = 50257;
  return [
    ...linearProducts('qkv', s.tokens, C, 3 * C),
    ...linearProducts('proj', s.tokens, C, C),
    ...linearProducts('mlp_up', s.tokens, C, 4 * C),
    ...linearProducts('mlp_down', s.tokens, 4 * C, C),
    ...linearProducts('lm_head', s.lmTokens, C, V),
  ];
}

const flops = (p: Product) => 2 * p.M * p.N * p.K;

function randomArray(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

function timeOwn(p: Product, s: Settings): Timing {
  const A = randomArray(p.M * p.K), B = randomArray(p.K * p.N), C = new Float32Array(p.M * p.N);
  const lda = p.transA ? p.M : p.K, ldb = p.transB ? p.K : p.N;
  return timeRuns(() => native.gemm(p.transA, p.transB, p.M, p.N, p.K, 1, A, lda, B, ldb, 0, C, p.N), { reps: s.reps, minSeconds: s.minSeconds, minRuns: 2 });
}

export async function run(opts: BenchOptions): Promise<void> {
  const s = parseArgs(opts.args);
  const products = gpt2Products(s);
  const rep = new Reporter(opts);
  const baseline = torchBaseline('engine', 'torch_gemm.py', { threads: s.threads, min_seconds: s.minSeconds, max_reps: s.reps, products }, torchForBench('engine', s.python, s.torch));
  const torch = baseline instanceof Map ? baseline : null;
  if (!(baseline instanceof Map)) rep.noBaseline(baseline.why);
  const blas = native.capability.blas;
  const backends: Array<'own' | 'blas'> = blas === 'own' ? ['own'] : ['own', 'blas'];
  const defaultBackend = native.getGemmBackend();
  const totals = new Map<string, { flops: number; seconds: number; torch: number; cpu: number; torchCpu: number }>();

  for (const threads of s.threads) {
    native.setThreads(threads);
    for (const p of products) {
      const t = torch?.get(`${p.name}|${threads}`);
      for (const backend of backends) {
        native.setGemmBackend(backend);
        const ours = timeOwn(p, s);
        const gflops = flops(p) / ours.best * 1e-9;
        const label = backend === 'own' ? `own-${native.capability.simd}` : blas;
        const figures: Record<string, number | string> = { gflops, ms: ours.best * 1e3, median_ms: ours.median * 1e3 };
        if (t) figures.torch_gflops = flops(p) / t.best * 1e-9;
        // With several threads, CPU time also counts threads spinning at barriers: one thread only.
        if (threads === 1) {
          figures.cpu_gflops = flops(p) / ours.cpu * 1e-9;
          if (t) figures.torch_cpu_gflops = flops(p) / t.cpu * 1e-9;
        }
        rep.add({ name: `${p.name} ${label} ${threads}t`, figures, ratio: t ? t.best / ours.best : undefined });
        const key = `${threads}|${label}`;
        const tot = totals.get(key) ?? { flops: 0, seconds: 0, torch: 0, cpu: 0, torchCpu: 0 };
        tot.flops += flops(p);
        tot.seconds += ours.best;
        tot.torch += t ? t.best : NaN;
        tot.cpu += ours.cpu;
        tot.torchCpu += t ? t.cpu : NaN;
        totals.set(key, tot);
      }
    }
  }
  for (const [key, tot] of totals) {
    const [threads, label] = key.split('|');
    const figures: Record<string, number | string> = { gflops: tot.flops / tot.seconds * 1e-9, ms: tot.seconds * 1e3 };
    const haveTorch = Number.isFinite(tot.torch);
    if (haveTorch) figures.torch_gflops = tot.flops / tot.torch * 1e-9;
    if (threads === '1') {
      figures.cpu_gflops = tot.flops / tot.cpu * 1e-9;
      if (haveTorch) figures.torch_cpu_gflops = tot.flops / tot.torchCpu * 1e-9;
    }
    rep.add({ name: `gemm all ${products.length} products (sum of best times) ${label} ${threads}t`, figures,
      ratio: haveTorch ? tot.torch / tot.seconds : undefined });
  }
  native.setGemmBackend(defaultBackend === 'own' ? 'own' : 'blas');
  rep.finish(`engine: matrix products of GPT-2 small (tokens ${s.tokens}, LM head ${s.lmTokens} tokens), GFLOP/s, best of up to ${s.reps} runs; default backend ${defaultBackend}`);
}
