// `node dist/bench/kernels.js [--json] [options]` (or `npm run bench -- kernels` once
// registered in bench/main.ts): the non-GEMM kernels of one GPT-2-small training step
// (tokens 1024, C 768, MLP 3072, V 50257) — LayerNorm, GELU, bias add and its gradient,
// softmax, the fused log-prob loss, embedding gather/scatter, permute, AdamW — timed
// with 1 and 2 threads, and the torch ops a torch training step runs for the same work,
// measured in the same run by bench/torch_kernels.py (ratio = torch time / ours).
//
// Options: --reps N (most timed runs, default 7), --min-seconds S (default 0.3),
// --threads 1,2, --python PATH, --no-torch, --only SUBSTRING.
// Each figure is the best run (the machine may be shared); the median is shown beside it,
// and with one thread also the best process CPU time (cpu_ms, torch_cpu_ms), which time
// spent descheduled does not spoil.
import { pathToFileURL } from 'node:url';
import { native } from '../src/native.js';
import { Reporter, type BenchOptions } from './report.js';
import { timeRuns } from './timing.js';
import { torchBaseline, torchForBench } from './torch-python.js';

/** One timed kernel; `kind` and `dims` are what bench/torch_kernels.py reads. */
export interface KernelCase {
  name: string;
  kind: string;
  dims: Record<string, number>;
  /** Bytes the kernel must read and write at least (for GB/s). */
  bytes: number;
}

interface Settings {
  reps: number;
  minSeconds: number;
  threads: number[];
  python: string | null;
  torch: boolean;
  only: string | null;
}

const DEFAULTS: Settings = { reps: 7, minSeconds: 0.3, threads: [1, 2], python: null, torch: true, only: null };

function parseArgs(args: string[]): Settings {
  const s: Settings = { ...DEFAULTS, threads: [...DEFAULTS.threads] };
  const positive = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`bench kernels: ${flag} needs a positive number, got '${v ?? ''}'`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === 'kernels') continue;
    if (a === '--reps') s.reps = Math.round(positive(a, args[++i]));
    else if (a === '--min-seconds') s.minSeconds = positive(a, args[++i]);
    else if (a === '--threads') s.threads = (args[++i] ?? '').split(',').map((t) => Math.round(positive(a, t)));
    else if (a === '--python') s.python = args[++i] ?? null;
    else if (a === '--no-torch') s.torch = false;
    else if (a === '--only') s.only = args[++i] ?? null;
    else throw new Error(`bench kernels: unknown option '${a}' (have --reps, --min-seconds, --threads, --python, --no-torch, --only)`);
  }
  return s;
}

const T = 1024, C = 768, H = 3072, V = 50257, LM = 256, P = 10_000_000;
const F = 4; // bytes per float

export const CASES: KernelCase[] = [
  { name: `layerNorm fwd ${T}x${C}`, kind: 'layerNormForward', dims: { N: T, C }, bytes: 2 * T * C * F },
  { name: `layerNorm bwd ${T}x${C}`, kind: 'layerNormBackward', dims: { N: T, C }, bytes: 3 * T * C * F },
  { name: `gelu tanh fwd ${T}x${H}`, kind: 'geluTanh', dims: { n: T * H }, bytes: 2 * T * H * F },
  { name: `gelu tanh bwd ${T}x${H}`, kind: 'geluTanhBackward', dims: { n: T * H }, bytes: 3 * T * H * F },
  { name: `gelu erf fwd ${T}x${H}`, kind: 'geluErf', dims: { n: T * H }, bytes: 2 * T * H * F },
  { name: `gelu erf bwd ${T}x${H}`, kind: 'geluErfBackward', dims: { n: T * H }, bytes: 3 * T * H * F },
  { name: `silu fwd ${T}x${H}`, kind: 'silu', dims: { n: T * H }, bytes: 2 * T * H * F },
  { name: `residual add ${T}x${C}`, kind: 'add', dims: { n: T * C }, bytes: 3 * T * C * F },
  { name: `bias add ${T}x${H}`, kind: 'addRow', dims: { N: T, C: H }, bytes: 2 * T * H * F },
  { name: `bias grad ${T}x${H}`, kind: 'sumRows', dims: { N: T, C: H }, bytes: T * H * F },
  { name: `softmax fwd 4x12x256x256`, kind: 'softmaxForward', dims: { N: 4 * 12 * 256, C: 256 }, bytes: 2 * 4 * 12 * 256 * 256 * F },
  { name: `softmax bwd 4x12x256x256`, kind: 'softmaxBackward', dims: { N: 4 * 12 * 256, C: 256 }, bytes: 3 * 4 * 12 * 256 * 256 * F },
  { name: `logprobs fwd ${LM}x${V}`, kind: 'logprobsForward', dims: { N: LM, V }, bytes: LM * V * F },
  { name: `logprobs bwd ${LM}x${V}`, kind: 'logprobsBackward', dims: { N: LM, V }, bytes: 2 * LM * V * F },
  { name: `embedding gather ${T}x${C}`, kind: 'gatherRows', dims: { N: T, V, C }, bytes: 2 * T * C * F },
  { name: `embedding bwd ${V}x${C}`, kind: 'scatterAddRows', dims: { N: T, V, C }, bytes: (V * C + T * C) * F },
  { name: `heads permute 4x256x12x64`, kind: 'permute', dims: { B: 4, T: 256, NH: 12, HS: 64 }, bytes: 2 * T * C * F },
  { name: `adamw ${P / 1e6}M params`, kind: 'adamw', dims: { n: P }, bytes: 7 * P * F },
  // The same kernel against torch's fused=True AdamW (not torch's CPU default).
  { name: `adamw ${P / 1e6}M params vs fused`, kind: 'adamwFused', dims: { n: P }, bytes: 7 * P * F },
  { name: `grad norm ${P / 1e6}M`, kind: 'sumSquares', dims: { n: P }, bytes: P * F },
];

function randomArray(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

/** Builds the inputs of a case once and returns the call to time. */
function prepare(c: KernelCase): () => void {
  const d = c.dims;
  switch (c.kind) {
    case 'layerNormForward':
    case 'layerNormBackward': {
      const x = randomArray(d.N * d.C), w = randomArray(d.C), b = randomArray(d.C), out = new Float32Array(d.N * d.C);
      const mean = new Float32Array(d.N), rstd = new Float32Array(d.N);
      native.layerNormForward(out, mean, rstd, x, w, b, d.N, d.C, 1e-5);
      if (c.kind === 'layerNormForward') return () => native.layerNormForward(out, mean, rstd, x, w, b, d.N, d.C, 1e-5);
      const dout = randomArray(d.N * d.C), dx = new Float32Array(d.N * d.C), dw = new Float32Array(d.C), db = new Float32Array(d.C);
      return () => native.layerNormBackward(dx, dw, db, dout, x, w, mean, rstd, d.N, d.C);
    }
    case 'geluTanh':
    case 'geluErf':
    case 'silu': {
      const x = randomArray(d.n, 4), out = new Float32Array(d.n);
      if (c.kind === 'silu') return () => native.silu(out, x);
      const approximate = c.kind === 'geluTanh';
      return () => native.gelu(out, x, approximate);
    }
    case 'geluTanhBackward':
    case 'geluErfBackward': {
      const x = randomArray(d.n, 4), dout = randomArray(d.n), dx = new Float32Array(d.n);
      const approximate = c.kind === 'geluTanhBackward';
      return () => native.geluBackward(dx, x, dout, approximate);
    }
    case 'add': {
      const a = randomArray(d.n), b = randomArray(d.n), out = new Float32Array(d.n);
      return () => native.add(out, a, b);
    }
    case 'addRow': {
      const a = randomArray(d.N * d.C), b = randomArray(d.C), out = new Float32Array(d.N * d.C);
      return () => native.addRow(out, a, b, d.N, d.C);
    }
    case 'sumRows': {
      const a = randomArray(d.N * d.C), out = new Float32Array(d.C);
      return () => native.sumRows(out, a, d.N, d.C);
    }
    case 'softmaxForward':
    case 'softmaxBackward': {
      const x = randomArray(d.N * d.C, 4), out = new Float32Array(d.N * d.C);
      native.softmaxForward(out, x, d.N, d.C);
      if (c.kind === 'softmaxForward') return () => native.softmaxForward(out, x, d.N, d.C);
      const dout = randomArray(d.N * d.C), dx = new Float32Array(d.N * d.C);
      return () => native.softmaxBackward(dx, out, dout, d.N, d.C);
    }
    case 'logprobsForward':
    case 'logprobsBackward': {
      const logits = randomArray(d.N * d.V, 8), labels = Int32Array.from({ length: d.N }, (_, i) => (i * 7919) % d.V);
      const out = new Float32Array(d.N), lse = new Float32Array(d.N);
      native.logprobsForward(out, lse, logits, labels, d.N, d.V);
      if (c.kind === 'logprobsForward') return () => native.logprobsForward(out, lse, logits, labels, d.N, d.V);
      const dout = randomArray(d.N), dlogits = new Float32Array(d.N * d.V);
      return () => native.logprobsBackward(dlogits, dout, logits, lse, labels, d.N, d.V);
    }
    case 'gatherRows':
    case 'scatterAddRows': {
      const idx = Int32Array.from({ length: d.N }, (_, i) => (i * 7919) % d.V);
      if (c.kind === 'gatherRows') {
        const table = randomArray(d.V * d.C), out = new Float32Array(d.N * d.C);
        return () => native.gatherRows(out, table, idx, d.C);
      }
      const dout = randomArray(d.N * d.C), dtable = new Float32Array(d.V * d.C);
      return () => native.scatterAddRows(dtable, dout, idx, d.V, d.C);
    }
    case 'permute': {
      const n = d.B * d.T * d.NH * d.HS, x = randomArray(n), out = new Float32Array(n);
      return () => native.permute(out, x, [d.B, d.T, d.NH, d.HS], [0, 2, 1, 3]);
    }
    case 'adamw':
    case 'adamwFused': {
      const p = randomArray(d.n), g = randomArray(d.n, 0.01), m = new Float32Array(d.n), v = new Float32Array(d.n);
      let step = 0;
      return () => native.adamw(p, g, m, v, 1e-4, 0.9, 0.999, 1e-8, 0.01, ++step);
    }
    case 'sumSquares': {
      const g = randomArray(d.n);
      return () => { native.sumSquares(g); };
    }
    default:
      throw new Error(`bench kernels: no kernel for kind '${c.kind}'`);
  }
}

export async function run(opts: BenchOptions): Promise<void> {
  const s = parseArgs(opts.args);
  const cases = CASES.filter((c) => !s.only || c.name.includes(s.only));
  const rep = new Reporter(opts);
  const baseline = torchBaseline('kernels', 'torch_kernels.py', { threads: s.threads, min_seconds: s.minSeconds, max_reps: s.reps, cases }, torchForBench('kernels', s.python, s.torch));
  const torch = baseline instanceof Map ? baseline : null;
  if (!(baseline instanceof Map)) rep.noBaseline(baseline.why);
  const before = native.getThreads();
  const totals = new Map<number, { ours: number; torch: number }>();
  for (const threads of s.threads) {
    native.setThreads(threads);
    for (const c of cases) {
      const ours = timeRuns(prepare(c), { reps: s.reps, minSeconds: s.minSeconds, minRuns: 3 });
      const t = torch?.get(`${c.name}|${threads}`);
      const figures: Record<string, number | string> = {
        ms: ours.best * 1e3, median_ms: ours.median * 1e3, gb_s: c.bytes / ours.best * 1e-9,
      };
      if (t) figures.torch_ms = t.best * 1e3;
      // With several threads, CPU time also counts threads spinning at barriers: one thread only.
      if (threads === 1) {
        figures.cpu_ms = ours.cpu * 1e3;
        if (t) figures.torch_cpu_ms = t.cpu * 1e3;
      }
      rep.add({ name: `${c.name} ${threads}t`, figures, ratio: t ? t.best / ours.best : undefined });
      const tot = totals.get(threads) ?? { ours: 0, torch: 0 };
      tot.ours += ours.best;
      tot.torch += t ? t.best : NaN;
      totals.set(threads, tot);
    }
  }
  native.setThreads(before);
  for (const [threads, tot] of totals) {
    const haveTorch = Number.isFinite(tot.torch);
    const figures: Record<string, number | string> = { ms: tot.ours * 1e3 };
    if (haveTorch) figures.torch_ms = tot.torch * 1e3;
    rep.add({ name: `all ${cases.length} kernels (sum of best times) ${threads}t`, figures,
      ratio: haveTorch ? tot.torch / tot.ours : undefined });
  }
  rep.finish(`kernels: non-GEMM kernels of a GPT-2-small step (tokens ${T}), best of up to ${s.reps} runs; ratio = torch time / ours`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  run({ json: argv.includes('--json'), args: argv.filter((a) => a !== '--json') }).catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
