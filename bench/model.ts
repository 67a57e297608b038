// `npm run bench -- model [--json] [--threads N] [--config tiny,gpt2-small] [--only train,gen] [--python PY] [--no-torch]`:
// training-step tokens/s (forward + backward + AdamW) and KV-cache generation
// tokens/s of the GPT-2 stack, side by side with the plain-PyTorch GPT-2 of
// bench/torch_model.py (bench/torch_gpt.py) with the same thread count, plus
// each side's peak resident memory.
//
// Every measurement runs in a fresh child process (this file with --worker for
// Quartet, bench/torch_model.py for PyTorch) so that peak RSS belongs to that
// one measurement; the two sides alternate. Shapes (given to both sides from
// CONFIGS and GEN below): tiny (4 layers, 4 heads, C 256, V 8192, T 256, B 8)
// and gpt2-small (12/12/768, V 50257, T 256, B 4); AdamW(lr 3e-4, betas
// 0.9/0.95, wd 0.1); generation batch 8, prompt 64, 64 new tokens, greedy,
// median of 3. The Python is found as bench/torch-python.ts says.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Reporter, type BenchOptions } from './report.js';
import { TUNED_ENV, runTorchScript, torchEnv, torchForBench } from './torch-python.js';

const exec = promisify(execFile);

const CONFIGS: Record<string, { layers: number; heads: number; hidden: number; vocab: number; seq: number; batch: number; steps: number }> = {
  tiny: { layers: 4, heads: 4, hidden: 256, vocab: 8192, seq: 256, batch: 8, steps: 10 },
  'gpt2-small': { layers: 12, heads: 12, hidden: 768, vocab: 50257, seq: 256, batch: 4, steps: 3 },
};
const GEN = { batch: 8, prompt: 64, newTokens: 64, reps: 3 };

interface WorkerResult {
  tokens_per_s: number;
  step_ms?: number;
  total_ms?: number;
  peak_rss_mb: number;
}

/** One measurement of Quartet, in this process (called in a child with --worker). */
async function worker(kind: string, config: string, threads: number): Promise<WorkerResult> {
  const { native } = await import('../src/native.js');
  const { normaliseConfig } = await import('../src/models/config.js');
  const { initConfigJson, initParams } = await import('../src/models/init.js');
  const { Transformer } = await import('../src/models/transformer.js');
  const { generate } = await import('../src/models/generate.js');
  const { AdamW, Rng, crossEntropy, fromI32, reshape, tidy, zeroGrad } = await import('../src/tensor/index.js');
  native.setThreads(threads);
  const c = CONFIGS[config];
  const cfg = normaliseConfig(initConfigJson({ modelType: 'gpt2', layers: c.layers, hidden: c.hidden, heads: c.heads, vocab: c.vocab, maxPositions: Math.max(c.seq, GEN.prompt + GEN.newTokens) }));
  const model = new Transformer(cfg, initParams(cfg, 1234));
  model.dropoutEnabled = false;
  const rng = new Rng(1);
  const randomIds = (n: number) => Int32Array.from({ length: n }, () => rng.int(c.vocab));
  if (kind === 'train') {
    const { batch: B, seq: T } = c;
    const opt = new AdamW(model.parameters(), { lr: 3e-4, betas: [0.9, 0.95], weightDecay: 0.1, eps: 1e-8 });
    const times: number[] = [];
    for (let s = 0; s < 1 + c.steps; s++) {
      const ids = fromI32(randomIds(B * T), [B, T]);
      const labels = fromI32(randomIds(B * T), [B * T]);
      const t0 = performance.now();
      const loss = tidy(() => crossEntropy(reshape(model.forward(ids), [B * T, c.vocab]), labels));
      zeroGrad(model.parameters());
      loss.backward();
      opt.step();
      loss.dispose();
      if (s > 0) times.push(performance.now() - t0);
      ids.dispose();
      labels.dispose();
    }
    const step = times.reduce((a, b) => a + b, 0) / times.length;
    return { tokens_per_s: (B * T) / (step / 1000), step_ms: step, peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
  }
  const { batch: B, prompt: P, newTokens: N } = GEN;
  const prompt = randomIds(B * P);
  generate(model, prompt, null, B, P, { maxNewTokens: 4, eosTokenId: null });
  const runs: number[] = [];
  for (let r = 0; r < GEN.reps; r++) {
    const t0 = performance.now();
    generate(model, prompt, null, B, P, { maxNewTokens: N, eosTokenId: null });
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  const total = runs[Math.floor(runs.length / 2)];
  return { tokens_per_s: (B * N) / (total / 1000), total_ms: total, peak_rss_mb: process.resourceUsage().maxRSS / 1024 };
}

async function quartet(kind: string, config: string, threads: number): Promise<WorkerResult> {
  const self = fileURLToPath(import.meta.url);
  // Quartet runs with its own OpenMP default (src/native.ts); only the malloc settings are shared.
  const { OMP_WAIT_POLICY: _passive, ...malloc } = TUNED_ENV;
  const env = { ...process.env, ...malloc };
  const { stdout } = await exec(process.execPath, [self, '--worker', kind, config, String(threads)], { maxBuffer: 1 << 20, env });
  return JSON.parse(stdout.trim().split('\n').pop()!) as WorkerResult;
}

/** bench/torch_model.py's figures for one measurement, in its own process (its peak RSS is this measurement's). */
function torch(py: string, kind: string, config: string, threads: number): WorkerResult {
  const c = CONFIGS[config];
  const spec = { kind, threads, seed: 1234, model: c, gen: { batch: GEN.batch, prompt: GEN.prompt, new_tokens: GEN.newTokens, reps: GEN.reps } };
  const rec = runTorchScript(py, 'torch_model.py', spec, torchEnv(threads)).find((r) => r.kind === kind);
  if (!rec) throw new Error(`bench model: bench/torch_model.py gave no ${kind} result for ${config}`);
  return { tokens_per_s: rec.tokens_per_s as number, step_ms: rec.step_ms as number | undefined, total_ms: rec.total_ms as number | undefined, peak_rss_mb: rec.peak_rss_mb as number };
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

export async function run(opts: BenchOptions): Promise<void> {
  const threads = Number(option(opts.args, '--threads', '2'));
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench model: --threads must be a positive integer`);
  const configs = option(opts.args, '--config', 'tiny,gpt2-small').split(',');
  const kinds = option(opts.args, '--only', 'train,gen').split(',');
  for (const c of configs) if (!CONFIGS[c]) throw new Error(`bench model: unknown config '${c}' (have: ${Object.keys(CONFIGS).join(', ')})`);
  for (const k of kinds) if (k !== 'train' && k !== 'gen') throw new Error(`bench model: unknown measurement '${k}' (train, gen)`);
  const rep = new Reporter(opts);
  const baseline = torchForBench('model', option(opts.args, '--python', '') || null, !opts.args.includes('--no-torch'));
  const py = baseline.ok ? baseline.python : null;
  if (!baseline.ok) rep.noBaseline(baseline.why);
  for (const config of configs) {
    for (const kind of kinds) {
      const q = await quartet(kind, config, threads);
      const t = py ? torch(py, kind, config, threads) : null;
      const unit = kind === 'train' ? 'train tokens/s (fwd+bwd+AdamW)' : `gen tokens/s (KV cache, B ${GEN.batch}, ${GEN.prompt}+${GEN.newTokens})`;
      rep.add({
        name: `${config} ${unit}`,
        figures: { threads, tokens_per_s: q.tokens_per_s, torch_tokens_per_s: t?.tokens_per_s ?? 'no baseline' },
        ...(t ? { ratio: q.tokens_per_s / t.tokens_per_s } : {}),
      });
      rep.add({
        name: `${config} ${kind} peak RSS MB (torch/quartet: higher is better)`,
        figures: { threads, quartet_mb: q.peak_rss_mb, torch_mb: t?.peak_rss_mb ?? 'no baseline' },
        ...(t ? { ratio: t.peak_rss_mb / q.peak_rss_mb } : {}),
      });
    }
  }
  rep.finish(`model: Quartet GPT-2 stack vs plain PyTorch ${baseline.ok ? baseline.version + ' ' : ''}(${threads} threads; bars: train >= 1.2x, gen >= 2x, memory ratio >= 1)`);
}

if (process.argv[2] === '--worker' && process.argv[1] === fileURLToPath(import.meta.url)) {
  const [, , , kind, config, threads] = process.argv;
  worker(kind, config, Number(threads)).then(
    (r) => console.log(JSON.stringify(r)),
    (err) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
