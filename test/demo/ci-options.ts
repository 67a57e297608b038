// The demo's settings for the CI test (test/demo/e2e.test.ts): the same
// pipeline as `quartet train` with no arguments, every phase shrunk to run in
// a few minutes.
import type { DemoOptions } from '../../src/demo/options.js';

/** Small settings for the CI test: the same pipeline in a few minutes. */
export const ciDemoOptions: DemoOptions = {
  data: { sftExamples: 2000, rmPrompts: 9000, evalPrompts: 64 },
  model: { layers: 2, hidden: 128, heads: 4 },
  pretrain: { steps: 400, batchSize: 32, lr: 3e-3, warmup: 20 },
  pairs: { prompts: 9000, batchSize: 256, temperature: 1 },
  rmEvalFraction: 0.1,
  evaluate: { batchSize: 64, samples: 3 },
};

/** The CI run's step sizes, as command-line flags over configs/demo.json. */
export const ciStepFlags = [
  '--sft.epochs=2',
  '--rm.epochs=3', '--reward.lr=3e-3',
  '--ppo.maxSteps=60', '--ppo.promptBatchSize=64', '--ppo.trainBatchSize=64',
  '--actor.lr=3e-4', '--critic.lr=3e-4',
];
