// The demo's own settings: what happens before and around the three steps
// (the model's size, pre-training, the preference pairs, the evaluation).
// The steps themselves are configured by configs/demo.json like any run.
// The full settings follow a PyTorch study made before the demo was built
// (docs/demo.md compares its figures); the CI test's smaller settings live
// with the test (test/demo/ci-options.ts).
import type { DemoDataOptions } from './data.js';

export interface DemoOptions {
  /** The data folder's options (corpus split, tokenizer, prompt sets). */
  data: Partial<DemoDataOptions>;
  /** The GPT-2 shaped model trained from scratch. */
  model: { layers: number; hidden: number; heads: number };
  /** Step 0: language-model training on the corpus, rows of contextLength tokens. */
  pretrain: { steps: number; batchSize: number; lr: number; warmup: number };
  /** Prompts answered twice by the SFT actor to make the reward model's preference pairs. */
  pairs: { prompts: number; batchSize: number; temperature: number };
  /** Held-out pairs for the reward model's accuracy. */
  rmEvalFraction: number;
  /** Before/after evaluation on the held-out prompts: generation batch, and sample answers shown. */
  evaluate: { batchSize: number; samples: number };
}

export const demoDefaults: DemoOptions = {
  data: {},
  model: { layers: 2, hidden: 128, heads: 4 },
  pretrain: { steps: 900, batchSize: 64, lr: 3e-3, warmup: 50 },
  pairs: { prompts: 10000, batchSize: 256, temperature: 1 },
  rmEvalFraction: 0.1,
  evaluate: { batchSize: 128, samples: 5 },
};

/** Checks each number by name; unknown keys are errors. */
export function checkDemoOptions(o: DemoOptions): void {
  const positive = (where: string, v: unknown, integer = true) => {
    if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v))) throw new Error(`demo options: ${where} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`);
  };
  for (const k of Object.keys(o)) if (!(k in demoDefaults)) throw new Error(`demo options: unknown key '${k}'`);
  for (const [group, keys] of [['model', ['layers', 'hidden', 'heads']], ['pretrain', ['steps', 'batchSize', 'warmup']], ['pairs', ['prompts', 'batchSize']], ['evaluate', ['batchSize', 'samples']]] as const) {
    const g = o[group] as unknown as Record<string, unknown>;
    for (const k of Object.keys(g)) if (!(k in (demoDefaults[group] as object))) throw new Error(`demo options: unknown key '${group}.${k}'`);
    for (const k of keys) if (!(k === 'warmup' && g[k] === 0)) positive(`${group}.${k}`, g[k]);
  }
  positive('pretrain.lr', o.pretrain.lr, false);
  if (!(o.pairs.temperature >= 0)) throw new Error(`demo options: pairs.temperature must be >= 0, got ${o.pairs.temperature}`);
  if (!(o.rmEvalFraction > 0 && o.rmEvalFraction < 0.5)) throw new Error(`demo options: rmEvalFraction must be in (0, 0.5), got ${o.rmEvalFraction}`);
  if (o.model.hidden % o.model.heads !== 0) throw new Error(`demo options: model.hidden ${o.model.hidden} is not a multiple of model.heads ${o.model.heads}`);
}
