// `npm run bench -- ppo [--json] [--steps N] [--layout split|shared] [--overlap] [--python PY] [--no-torch]`: one PPO
// step of the `tiny` config (4 layers, 4 heads, C 256, V 8192; batch 8,
// prompt 64, 64 sampled tokens) through the coordinator's PPO driver with the
// four roles as processes on this machine's 2 cores, broken down into
// generation / experience (actor and reference log-probs, reward score,
// critic values, rewards and GAE) / training (actor and critic updates),
// side by side with the plain-PyTorch PPO step of bench/torch_ppo.py (same
// shapes, same phases, one process, 2 threads) measured in the same run.
//
// Layouts: 'split' (default) gives the actor both cores (2 threads) and the
// other roles one core each (reference on core 0, reward and critic on core
// 1), so generation uses the whole machine and the experience and training
// phases run their roles in parallel; 'shared' gives every role both cores.
// --overlap times the overlap schedule (ppo.overlap: step k+1 generated while
// step k trains, one step off-policy); its phase times overlap, so only the
// end-to-end time per step compares with PyTorch's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, type Config } from '../src/config/defaults.js';
import { placementPlan } from '../src/config/plan.js';
import { PpoDriver } from '../src/coordinator/ppo.js';
import { runPaths } from '../src/coordinator/run-dir.js';
import { initModelFolder } from '../src/models/init.js';
import { ScoreDecoder } from '../src/data/score-texts.js';
import { startRuntime } from '../src/runtime/index.js';
import { Reporter, type BenchOptions } from './report.js';
import { TUNED_ENV, runTorchScript, torchEnv, torchForBench } from './torch-python.js';

const SHAPE = { layers: 4, heads: 4, hidden: 256, vocab: 8192, batch: 8, prompt: 64, newTokens: 64 };

interface Phases {
  generate_ms: number;
  experience_ms: number;
  train_ms: number;
  total_ms: number;
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

export function benchConfig(dir: string, layout: string): Config {
  const c = defaultConfig();
  c.outputDir = dir;
  c.actor.model = join(dir, 'model');
  c.reward.model = join(dir, 'model');
  const place = (role: 'actor' | 'critic' | 'reference' | 'reward', devices: string, threads: number) => {
    c[role].devices = [devices];
    c[role].threads = threads;
    c[role].maxRestarts = 0;
  };
  if (layout === 'shared') {
    for (const r of ['actor', 'critic', 'reference', 'reward'] as const) place(r, 'cpu:0-1', 2);
  } else {
    place('actor', 'cpu:0-1', 2);
    place('reference', 'cpu:0', 1);
    place('reward', 'cpu:1', 1);
    place('critic', 'cpu:1', 1);
  }
  // bench/torch_ppo.py's PPO step: AdamW lr 1e-5 (actor) and 5e-6 (critic), no weight decay, sampling at T=1.
  Object.assign(c.actor, { lr: 1e-5, warmup: 0, schedule: 'constant', weightDecay: 0 });
  Object.assign(c.critic, { lr: 5e-6, warmup: 0, schedule: 'constant', weightDecay: 0 });
  Object.assign(c.ppo, { promptBatchSize: SHAPE.batch, trainBatchSize: SHAPE.batch, maxNewTokens: SHAPE.newTokens, temperature: 1, ppoEpochs: 1, generationBatches: 1 });
  return c;
}

async function quartetPpo(steps: number, layout: string, overlap: boolean): Promise<Phases & { answer_tokens: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'q-bench-ppo-'));
  // The role processes inherit the malloc settings of the PyTorch baseline, and keep
  // Quartet's own OpenMP default (src/native.ts) rather than passive waiting.
  const { OMP_WAIT_POLICY: _passive, ...malloc } = TUNED_ENV;
  Object.assign(process.env, malloc);
  try {
    const model = join(dir, 'model');
    initModelFolder(model, { modelType: 'gpt2', layers: SHAPE.layers, hidden: SHAPE.hidden, heads: SHAPE.heads, vocab: SHAPE.vocab, maxPositions: 256, seed: 1234 });
    const config = benchConfig(dir, layout);
    config.ppo.maxSteps = steps + 1;
    config.ppo.overlap = overlap;
    // Random prompts without the end-of-text token (the last id), so answers run to 64 tokens as bench/torch_ppo.py's do.
    let s = 1234;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % (SHAPE.vocab - 1);
    const n = SHAPE.batch * (steps + 1);
    const ids = Int32Array.from({ length: n * SHAPE.prompt }, rand);
    const offsets = Int32Array.from({ length: n + 1 }, (_, i) => i * SHAPE.prompt);
    const rt = await startRuntime(placementPlan(config, 'ppo'), { runDir: dir });
    try {
      const figures: Record<string, number | null>[] = [];
      const paths = runPaths(dir);
      const d = new PpoDriver(rt, config, { prompts: { prompts: { n, offsets, ids } }, padId: SHAPE.vocab - 1, eosId: SHAPE.vocab - 1, texts: ScoreDecoder.load(config.actor.model!) },
        { actor: paths.ppoActor, critic: paths.ppoCritic, checkpoints: paths.checkpoints, actorSource: null, criticSource: null },
        { progress: false, metrics: { write: (_p, _s, f) => figures.push(f) } });
      await d.run();
      const timed = figures.slice(1); // the first step warms up (allocator, caches)
      const avg = (k: string) => (1000 * timed.reduce((a, f) => a + (f[k] ?? 0), 0)) / timed.length;
      const tokens = timed.reduce((a, f) => a + (f.answer_len ?? 0) * (f.samples ?? 0), 0) / timed.length;
      return { generate_ms: avg('time_generate'), experience_ms: avg('time_experience'), train_ms: avg('time_train'), total_ms: avg('time_step'), answer_tokens: tokens };
    } finally {
      await rt.shutdown();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function torchPpo(py: string, steps: number): Phases {
  const spec = { threads: 2, seed: 1234, steps, shape: { layers: SHAPE.layers, heads: SHAPE.heads, hidden: SHAPE.hidden, vocab: SHAPE.vocab, batch: SHAPE.batch, prompt: SHAPE.prompt, new_tokens: SHAPE.newTokens } };
  const rec = runTorchScript(py, 'torch_ppo.py', spec, torchEnv(2)).find((r) => r.kind === 'ppo') as Record<string, number> | undefined;
  if (!rec) throw new Error('bench ppo: bench/torch_ppo.py gave no ppo result');
  const sum = (keys: string[]) => keys.reduce((a, k) => a + (rec[`${k}_ms`] ?? 0), 0);
  return {
    generate_ms: rec.generate_ms,
    experience_ms: sum(['actor_logprobs', 'ref_logprobs', 'reward_score', 'critic_values', 'rewards_gae']),
    train_ms: sum(['actor_fwd', 'actor_bwd', 'actor_adamw', 'critic_fwd', 'critic_bwd', 'critic_adamw']),
    total_ms: rec.total_ms,
  };
}

export async function run(opts: BenchOptions): Promise<void> {
  const steps = Number(option(opts.args, '--steps', '3'));
  const layout = option(opts.args, '--layout', 'split');
  if (!Number.isInteger(steps) || steps < 1) throw new Error('bench ppo: --steps must be a positive integer');
  if (layout !== 'split' && layout !== 'shared') throw new Error(`bench ppo: --layout must be split or shared, got '${layout}'`);
  const rep = new Reporter(opts);
  const baseline = torchForBench('ppo', option(opts.args, '--python', '') || null, !opts.args.includes('--no-torch'));
  if (!baseline.ok) rep.noBaseline(baseline.why);
  const overlap = opts.args.includes('--overlap');
  const q = await quartetPpo(steps, layout, overlap);
  const t = baseline.ok ? torchPpo(baseline.python, steps) : null;
  for (const phase of ['generate', 'experience', 'train', 'total'] as const) {
    const k = `${phase}_ms` as const;
    rep.add({
      name: `tiny PPO step: ${phase === 'total' ? 'end to end' : phase} ms (${layout}${overlap ? ', overlap' : ''})`,
      figures: { quartet_ms: q[k], torch_ms: t?.[k] ?? 'no baseline' },
      ...(t ? { ratio: t[k] / q[k] } : {}),
    });
  }
  rep.add({ name: 'tiny PPO step: answer tokens per step (quartet)', figures: { quartet_ms: q.answer_tokens } });
  rep.finish(`ppo: one PPO step of the tiny config, B ${SHAPE.batch}, prompt ${SHAPE.prompt} + ${SHAPE.newTokens} sampled, roles as processes on 2 cores vs plain PyTorch ${baseline.ok ? baseline.version + ' ' : ''}(2 threads), mean of ${steps} steps after one warm-up; bar: end to end >= 1.5x`);
}
