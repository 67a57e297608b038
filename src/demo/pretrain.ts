// Step 0 of the demo: a small GPT-2 shaped model trained from scratch on the
// Brown corpus, through the actor role's `train_sft` with every token a
// target (plain language modelling). Documents are joined with the end token
// and cut into rows of the context length; each step trains on a seeded
// random batch of rows. The result is a Hugging Face folder with the demo's
// tokenizer, cached by everything that made it (tokenizer, model shape,
// settings, seed), so a second run starts from it.
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/defaults.js';
import { placementPlan } from '../config/plan.js';
import { f32, i32, lrFor } from '../coordinator/driver.js';
import type { Figures, MetricsSink } from '../coordinator/metrics.js';
import { sha256 } from '../data/cache.js';
import { initModelFolder } from '../models/init.js';
import { QTokenizer } from '../models/tokenizer.js';
import { startRuntime } from '../runtime/index.js';
import { useAllCores } from './placement.js';
import { Progress } from '../util/progress.js';
import { BpeEncoder } from './bpe-encoder.js';
import type { DemoData } from './data.js';
import type { DemoOptions } from './options.js';
import { mulberry32 } from './rng.js';
import type { MetaOf } from '../roles/methods.js';

export interface PretrainHooks {
  log: (line: string) => void;
  metrics: MetricsSink;
  /** Where the role processes write their logs. */
  runDir: string;
  progress: boolean;
}

export interface PretrainResult {
  /** The pre-trained model folder (Hugging Face format, demo tokenizer). */
  dir: string;
  cached: boolean;
  steps: number;
  /** Mean loss of the last tenth of the steps. */
  finalLoss: number | null;
  seconds: number;
}

interface Manifest {
  key: string;
  rows: number;
  seconds: number;
  finalLoss: number | null;
  /** The metrics lines of the run that made it, replayed into each run that reuses it. */
  metrics: { step: number; figures: Figures }[];
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** The corpus as one token stream (documents ended by the end token), cut into rows of `T` tokens. */
export function corpusRows(texts: readonly string[], enc: BpeEncoder, eosId: number, T: number): { ids: Int32Array; rows: number } {
  const parts: number[][] = texts.map((t) => enc.encode(t));
  const total = parts.reduce((n, p) => n + p.length + 1, 0);
  const stream = new Int32Array(total);
  let at = 0;
  for (const p of parts) {
    stream.set(p, at);
    at += p.length;
    stream[at++] = eosId;
  }
  const rows = Math.floor(total / T);
  return { ids: stream.subarray(0, rows * T), rows };
}

/** A fresh model folder of the demo's shape, with the demo's tokenizer and its special token ids in config.json. */
function initBase(dir: string, data: DemoData, o: DemoOptions, vocab: number, context: number, seed: number, tok: QTokenizer): void {
  initModelFolder(dir, { modelType: 'gpt2', layers: o.model.layers, hidden: o.model.hidden, heads: o.model.heads, vocab, maxPositions: context, seed });
  for (const f of TOKENIZER_FILES) copyFileSync(join(data.tokenizerDir, f), join(dir, f));
  const cfgPath = join(dir, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  Object.assign(cfg, { bos_token_id: tok.bosId ?? tok.eosId, eos_token_id: tok.eosId, pad_token_id: tok.padId });
  writeFileSync(cfgPath, JSON.stringify(cfg, null, 2) + '\n');
}

function tokenizerConfig(dir: string): { vocab: number; context: number } {
  const tc = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { model_max_length?: number };
  const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens?: { id: number }[] };
  const ids = [...Object.values(tj.model.vocab), ...(tj.added_tokens ?? []).map((t) => t.id)];
  if (typeof tc.model_max_length !== 'number') throw new Error(`pretrain: ${dir}/tokenizer_config.json has no model_max_length`);
  return { vocab: Math.max(...ids) + 1, context: tc.model_max_length };
}

/**
 * Pre-trains the base model, or finds it in the data folder's cache. The
 * actor role runs alone on every core (`config` gives its other settings).
 */
export async function pretrainBase(data: DemoData, o: DemoOptions, config: Config, seed: number, hooks: PretrainHooks): Promise<PretrainResult> {
  const { vocab, context } = tokenizerConfig(data.tokenizerDir);
  const tokHash = sha256(TOKENIZER_FILES.map((f) => readFileSync(join(data.tokenizerDir, f), 'utf8')).join('\n'));
  const key = sha256(JSON.stringify({ version: 1, tokHash, model: o.model, pretrain: o.pretrain, seed, gradClip: config.actor.gradClip, texts: data.pretrainTexts.length }));
  const dir = join(data.dir, `base-${key.slice(0, 12)}`);
  const manifestPath = join(dir, 'pretrain.json');
  if (existsSync(manifestPath)) {
    const m = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    if (m.key === key) {
      for (const row of m.metrics) hooks.metrics.write('pretrain', row.step, row.figures);
      hooks.log(`step 0: pre-trained model cached in ${dir} (final loss ${m.finalLoss?.toFixed(3) ?? '-'}, made in ${m.seconds.toFixed(0)} s)`);
      return { dir, cached: true, steps: m.metrics.length, finalLoss: m.finalLoss, seconds: 0 };
    }
  }
  const started = performance.now();
  rmSync(dir, { recursive: true, force: true });
  const initDir = join(dir, 'init');
  const tok = QTokenizer.load(data.tokenizerDir);
  if (tok.eosId === null) throw new Error(`pretrain: ${data.tokenizerDir} names no eos_token`);
  initBase(initDir, data, o, vocab, context, seed, tok);

  const enc = new BpeEncoder(JSON.parse(readFileSync(join(data.tokenizerDir, 'tokenizer.json'), 'utf8')));
  const corpus = corpusRows(data.pretrainTexts, enc, tok.eosId, context);
  const { steps, batchSize: B, lr, warmup } = o.pretrain;
  hooks.log(`step 0: pre-training a ${o.model.layers}-layer, ${o.model.hidden}-wide GPT on ${corpus.rows} rows of ${context} tokens (${steps} steps of ${B} rows)`);

  const cfg: Config = structuredClone(config);
  cfg.actor.model = initDir;
  cfg.sft.dropout = false;
  useAllCores(cfg, 'actor');
  const rt = await startRuntime(placementPlan(cfg, 'sft'), { runDir: hooks.runDir, echo: null });
  const metrics: Manifest['metrics'] = [];
  const losses: number[] = [];
  try {
    const rand = mulberry32(seed ^ 0x5eed);
    let order: number[] = [];
    const mask = new Int32Array(B * context).fill(1);
    const lossMask = new Float32Array(B * context).fill(1);
    const bar = hooks.progress ? new Progress({ total: steps, label: 'pre-train', unit: 'steps' }) : null;
    for (let step = 0; step < steps; step++) {
      const ids = new Int32Array(B * context);
      for (let b = 0; b < B; b++) {
        if (order.length === 0) order = shuffledRange(corpus.rows, rand);
        const r = order.pop()!;
        ids.set(corpus.ids.subarray(r * context, (r + 1) * context), b * context);
      }
      const stepLr = lrFor({ lr, schedule: 'cosine', warmup }, step, steps);
      const t0 = performance.now();
      const r = await rt.group('actor').call('train_sft', {
        meta: { lr: stepLr, weightDecay: 0, gradClip: cfg.actor.gradClip, microBatch: B } satisfies MetaOf<'actor', 'train_sft'>,
        tensors: { ids: i32([B, context], ids), mask: i32([B, context], mask), loss_mask: f32([B, context], lossMask) },
      });
      const seconds = (performance.now() - t0) / 1000;
      const loss = r.metrics.loss ?? null;
      if (loss !== null) losses.push(loss);
      const figures: Figures = { loss, grad_norm: r.metrics.grad_norm ?? null, lr: stepLr, tokens_per_s: seconds > 0 ? (B * context) / seconds : null };
      hooks.metrics.write('pretrain', step + 1, figures);
      metrics.push({ step: step + 1, figures });
      bar?.tick(1, `loss ${loss?.toFixed(3) ?? '?'}`);
    }
    bar?.finish();
    await rt.role('actor', 0).call('save', { meta: { dir, optimizer: false } });
  } finally {
    await rt.shutdown();
  }
  for (const f of TOKENIZER_FILES) if (!existsSync(join(dir, f))) copyFileSync(join(data.tokenizerDir, f), join(dir, f));
  rmSync(initDir, { recursive: true, force: true });
  const tail = losses.slice(-Math.max(1, Math.floor(losses.length / 10)));
  const finalLoss = tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : null;
  const seconds = (performance.now() - started) / 1000;
  mkdirSync(dir, { recursive: true });
  const manifest: Manifest = { key, rows: corpus.rows, seconds, finalLoss, metrics };
  writeFileSync(manifestPath, JSON.stringify(manifest) + '\n');
  hooks.log(`step 0: pre-trained in ${seconds.toFixed(0)} s, final loss ${finalLoss?.toFixed(3) ?? '-'}; saved to ${dir}`);
  return { dir, cached: false, steps, finalLoss, seconds };
}

function shuffledRange(n: number, rand: () => number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
