// The request meta of every role method (src/roles/methods.ts): a missing,
// unknown or out-of-range key names role, method and key; nothing defaults.
import t from 'tap';
import { readMeta, roleMethods } from '../../src/roles/methods.js';

t.test('every key of a method is required, checked by kind, and no other is taken', (t) => {
  const step = { lr: 1e-3, weightDecay: 0, gradClip: 1, microBatch: 0 };
  t.same(readMeta('actor', 'train_ppo', { ...step, clipRange: 0.2, ptxCoef: 0 }), { ...step, clipRange: 0.2, ptxCoef: 0 });
  t.throws(() => readMeta('actor', 'train_ppo', step), /actor.train_ppo: meta.clipRange is required \(a number >= 0\)/);
  t.throws(() => readMeta('critic', 'train_value', { ...step, clipRangeValue: -1 }), /critic.train_value: meta.clipRangeValue must be a number >= 0, got -1/);
  t.throws(() => readMeta('actor', 'eval_dpo', { beta: 0, labelSmoothing: 0 }), /actor.eval_dpo: meta.beta must be a number > 0/);
  t.throws(() => readMeta('actor', 'train_sft', { ...step, microBatch: 1.5 }), /meta.microBatch must be an integer >= 0/);
  t.throws(() => readMeta('actor', 'generate', { maxNewTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 1, top_k: 5 }), /actor.generate: meta.top_k is not a setting of this method/);
  t.throws(() => readMeta('reward', 'save', { dir: '' , optimizer: false }), /reward.save: meta.dir must be a non-empty string/);
  t.throws(() => readMeta('reward', 'nope' as never, {}), /reward.nope: not a method of the reward role/);
  t.same(readMeta('reference', 'logprobs', {}), {});
  t.end();
});

t.test('the table covers the methods of docs/roles.md', (t) => {
  t.same(Object.keys(roleMethods.actor).sort(), ['eval_dpo', 'eval_sft', 'generate', 'load', 'logprobs', 'save', 'save_ema', 'train_dpo', 'train_ppo', 'train_sft']);
  t.same(Object.keys(roleMethods.critic).sort(), ['load', 'save', 'train_value', 'values']);
  t.same(Object.keys(roleMethods.reward).sort(), ['eval_rm', 'load', 'save', 'score', 'train_rm']);
  t.end();
});
