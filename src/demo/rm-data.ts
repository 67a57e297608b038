// Step 2's data: the SFT actor answers each reward-model prompt twice, and
// the gold scorer (AFINN, through labelPairs) picks the more positive answer
// as chosen; ties are dropped. The rows are written as a DeepSpeed-Chat JSONL
// dataset ({prompt, chosen, rejected}) that the pipeline's RM step reads like
// any user's data.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/defaults.js';
import { placementPlan } from '../config/plan.js';
import { QTokenizer } from '../models/tokenizer.js';
import { startRuntime } from '../runtime/index.js';
import { Progress } from '../util/progress.js';
import { BpeEncoder } from './bpe-encoder.js';
import type { DemoData } from './data.js';
import type { DemoOptions } from './options.js';
import { labelPairs, writeJsonl, type SampledPair } from './pairs.js';
import { generateBatch } from './sample.js';
import { join } from 'node:path';

export interface PairsResult {
  path: string;
  prompts: number;
  pairs: number;
  ties: number;
  /** Pairs dropped because an answer was empty. */
  empty: number;
  /** Mean gold score of chosen minus rejected. */
  meanGap: number;
  seconds: number;
}

/** Samples the pairs with the actor in `sftDir` (a replica per core) and writes them to `path`. */
export async function makePreferencePairs(sftDir: string, data: DemoData, o: DemoOptions, config: Config, path: string,
  hooks: { log: (line: string) => void; runDir: string; progress: boolean }): Promise<PairsResult> {
  const started = performance.now();
  const prompts = data.rm.slice(0, o.pairs.prompts).map((e) => e.prompt);
  if (prompts.length === 0) throw new Error('demo: no reward-model prompts in the data folder');
  const tok = QTokenizer.load(sftDir);
  const enc = new BpeEncoder(JSON.parse(readFileSync(join(sftDir, 'tokenizer.json'), 'utf8')));
  const cfg: Config = structuredClone(config);
  cfg.actor.model = sftDir;
  // Sampling rows are independent: one single-threaded replica per core is
  // faster than threads on a small model (and on a busy machine).
  cfg.actor.replicas = 2;
  cfg.actor.devices = ['cpu:0', 'cpu:1'];
  cfg.actor.threads = 1;
  const rt = await startRuntime(placementPlan(cfg, 'sft'), { runDir: hooks.runDir, echo: null });
  const sampled: SampledPair[] = [];
  try {
    // Both answers of a prompt sit in the same batch, as consecutive rows.
    const perBatch = Math.max(1, Math.floor(o.pairs.batchSize / 2));
    const bar = hooks.progress ? new Progress({ total: prompts.length, label: 'rm pairs', unit: 'prompts' }) : null;
    for (let at = 0, k = 0; at < prompts.length; at += perBatch, k++) {
      const chunk = prompts.slice(at, at + perBatch);
      const g = await generateBatch(rt, enc, tok, chunk.flatMap((p) => [p, p]), {
        maxNewTokens: config.ppo.maxNewTokens, temperature: o.pairs.temperature, seed: config.seed * 1000 + k,
      });
      chunk.forEach((prompt, i) => sampled.push({ prompt, answers: [g.answers[2 * i], g.answers[2 * i + 1]] }));
      bar?.tick(chunk.length);
    }
    bar?.finish();
  } finally {
    await rt.shutdown();
  }
  // An empty answer (the end token first) makes no dataset row: the data layer refuses empty fields.
  const usable = sampled.filter((p) => p.answers.every((a) => a.trim() !== ''));
  const labelled = labelPairs(usable);
  writeJsonl(path, labelled.rows);
  const seconds = (performance.now() - started) / 1000;
  hooks.log(`step 2 data: ${prompts.length} prompts answered twice; ${labelled.rows.length} preference pairs (${labelled.ties} ties and ` +
    `${sampled.length - usable.length} pairs with an empty answer dropped, ` +
    `mean gold gap ${labelled.meanGap.toFixed(2)}) in ${seconds.toFixed(0)} s -> ${path}`);
  return { path, prompts: prompts.length, pairs: labelled.rows.length, ties: labelled.ties, empty: sampled.length - usable.length, meanGap: labelled.meanGap, seconds };
}
