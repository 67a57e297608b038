// The demo's before/after evaluation on held-out prompts: the SFT policy and
// the PPO policy answer the same prompts with the same sampling seeds; each
// answer gets its gold score (AFINN), the learned reward model's score, and
// its KL to the reference (the SFT policy): the sum over answer tokens of
// log pi(a) - log pi_ref(a), the estimate PPO's penalty uses.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/defaults.js';
import { placementPlan } from '../config/plan.js';
import { i32 } from '../coordinator/driver.js';
import { ScoreDecoder } from '../data/score-texts.js';
import { QTokenizer } from '../models/tokenizer.js';
import { startRuntime, type Roles } from '../runtime/index.js';
import { Progress } from '../util/progress.js';
import { BpeEncoder } from './bpe-encoder.js';
import { summariseAnswers, type AnswerSummary } from './gold.js';
import { generateBatch, type GeneratedBatch } from './sample.js';
import type { MetaOf } from '../roles/methods.js';

export interface PolicyEval {
  answers: string[];
  gold: AnswerSummary;
  /** Mean learned reward of the answers. */
  reward: number;
  /** Mean KL to the reference, nats per answer. */
  kl: number;
}

export interface EvalResult {
  before: PolicyEval;
  after: PolicyEval;
  seconds: number;
}

/** Per-answer KL estimates: sum over answer tokens (t >= P) of logp - ref_logp. */
export function answerKl(g: GeneratedBatch, logp: Float32Array, ref: Float32Array): number[] {
  const { B, T, P } = g;
  const A = T - 1;
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    let kl = 0;
    // Entry t of a [B, A] log-prob row is the log-prob of token t + 1.
    for (let t = P; t < T; t++) if (g.mask[b * T + t]) kl += logp[b * A + t - 1] - ref[b * A + t - 1];
    out.push(kl);
  }
  return out;
}

async function evaluateLoaded(roles: Roles, enc: BpeEncoder, tok: QTokenizer, texts: ScoreDecoder, prompts: readonly string[], config: Config, batchSize: number, bar: Progress | null): Promise<PolicyEval> {
  const answers: string[] = [];
  let rewardSum = 0, klSum = 0;
  for (let at = 0, k = 0; at < prompts.length; at += batchSize, k++) {
    const g = await generateBatch(roles, enc, tok, prompts.slice(at, at + batchSize), {
      maxNewTokens: config.ppo.maxNewTokens, temperature: config.ppo.temperature, seed: 7919 * (config.seed + 1) + k,
    });
    const seqs = { ids: i32([g.B, g.T], g.ids), mask: i32([g.B, g.T], g.mask) };
    const [lp, ref, sc] = await Promise.all([
      roles.group('actor').call('logprobs', { tensors: seqs }),
      roles.group('reference').call('logprobs', { tensors: seqs }),
      roles.group('reward').call('score', { meta: { promptLength: g.P, ...texts.decode(g.ids, g.mask, g.B, g.T, g.P) } satisfies MetaOf<'reward', 'score'>, tensors: seqs }),
    ]);
    answerKl(g, lp.tensors.logprobs.data as Float32Array, ref.tensors.logprobs.data as Float32Array).forEach((v) => (klSum += v));
    (sc.tensors.scores.data as Float32Array).forEach((v) => (rewardSum += v));
    answers.push(...g.answers);
    bar?.tick(g.B);
  }
  return { answers, gold: summariseAnswers(answers), reward: rewardSum / answers.length, kl: klSum / answers.length };
}

/**
 * Evaluates the SFT actor (`sftDir`, also the reference) and then the PPO
 * actor (`ppoDir`, loaded into the same actor role) on `prompts`, scored by
 * the reward model in `rmDir`.
 */
export async function evaluateBeforeAfter(sftDir: string, ppoDir: string, rmDir: string, prompts: readonly string[], config: Config, batchSize: number,
  hooks: { runDir: string; progress: boolean }): Promise<EvalResult> {
  if (prompts.length === 0) throw new Error('demo evaluate: no evaluation prompts');
  const started = performance.now();
  const cfg: Config = structuredClone(config);
  cfg.actor.model = sftDir;
  cfg.reference.model = sftDir;
  cfg.reward.model = rmDir;
  const plan = placementPlan(cfg, 'ppo');
  delete plan.critic;
  const tok = QTokenizer.load(sftDir);
  const texts = ScoreDecoder.load(sftDir);
  const enc = new BpeEncoder(JSON.parse(readFileSync(join(sftDir, 'tokenizer.json'), 'utf8')));
  const rt = await startRuntime(plan, { runDir: hooks.runDir, echo: null });
  try {
    const bar = hooks.progress ? new Progress({ total: 2 * prompts.length, label: 'evaluate', unit: 'answers' }) : null;
    const before = await evaluateLoaded(rt, enc, tok, texts, prompts, cfg, batchSize, bar);
    await rt.group('actor').broadcast('load', { meta: { dir: ppoDir, optimizer: false } });
    const after = await evaluateLoaded(rt, enc, tok, texts, prompts, cfg, batchSize, bar);
    bar?.finish();
    return { before, after, seconds: (performance.now() - started) / 1000 };
  } finally {
    await rt.shutdown();
  }
}
