// The four model roles as real processes through the runtime (placement on
// cpu cores, tiny random GPT-2 folders): every method of docs/roles.md once,
// with checks on shapes and values against the engines run in this process.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/models/checkpoint.js';
import { initModelFolder } from '../../src/models/init.js';
import { addValueHead } from '../../src/models/value-head.js';
import { startRuntime } from '../../src/runtime/runtime.js';
import type { Tensors } from '../../src/runtime/wire.js';
import { engineOptions } from '../../actors/startup.js';
import { PolicyEngine } from '../../src/training/policy.js';
import { RewardEngine } from '../../src/training/reward.js';
import { ValueEngine } from '../../src/training/value.js';
import { processesMentioning, tempRunDir } from '../runtime/helpers.js';

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const i32 = (data: Int32Array, shape: number[]) => ({ dtype: 'i32' as const, shape, data });
const f32 = (data: Float32Array, shape: number[]) => ({ dtype: 'f32' as const, shape, data });

t.test('actor, critic, reference and reward processes serve every method', async (t) => {
  const runDir = tempRunDir(t, 'qrt-roles-');
  const actorDir = join(runDir, 'sft'), rmDir = join(runDir, 'rm');
  initModelFolder(actorDir, { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 300, maxPositions: 64, seed: 3 });
  const rmModel = loadModel(actorDir);
  addValueHead(rmModel, 4);
  saveModel(rmModel, rmDir, { tokenizerFrom: actorDir });
  const args = (model: string) => ({ model, seed: 7 });
  const rt = await startRuntime({
    actor: { replicas: 1, devices: ['cpu:0'], module: 'actors/actor.js', args: args(actorDir) },
    reference: { replicas: 1, devices: ['cpu:0'], module: 'actors/reference.js', args: args(actorDir) },
    critic: { replicas: 1, devices: ['cpu:1'], module: 'actors/critic.js', args: args(rmDir) },
    reward: { replicas: 1, devices: ['cpu:1'], module: 'actors/reward.js', args: args(rmDir) },
  }, { runDir });
  t.teardown(() => rt.shutdown());
  const call = (role: string, method: string, meta: Record<string, unknown> = {}, tensors: Tensors = {}) => rt.role(role, 0).call(method, { meta, tensors });

  // Left-padded prompts, pad id 299 (the eos).
  const B = 3, P = 4;
  const pIds = Int32Array.from([299, 299, 10, 11, 299, 20, 21, 22, 30, 31, 32, 33]);
  const pMask = Int32Array.from([0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]);
  const genMeta = { maxNewTokens: 5, temperature: 1, topK: 0, topP: 1, seed: 1 };
  const gen = await call('actor', 'generate', genMeta, { prompt_ids: i32(pIds, [B, P]), prompt_mask: i32(pMask, [B, P]) });
  const T = gen.tensors.ids.shape[1];
  t.ok(T > P && T <= P + 5, `generated up to meta.maxNewTokens: T = ${T}`);
  t.same(Object.keys(gen.tensors), ['ids'], 'only ids come back: the answer mask is the caller\'s to derive');
  const ids = gen.tensors.ids.data as Int32Array;
  // The model's eos (299) ends a row; the columns after it are pads.
  const mask = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    mask.set(pMask.subarray(b * P, (b + 1) * P), b * T);
    for (let c = P; c < T; c++) {
      mask[b * T + c] = 1;
      if (ids[b * T + c] === 299) break;
    }
  }
  const local = PolicyEngine.load(engineOptions('actor', args(actorDir))).generate({ ids: pIds, mask: pMask, B, T: P }, genMeta);
  t.same(Array.from(ids), Array.from(local.ids), 'the tokens of the engine in this process');
  t.same(Array.from(mask), Array.from(local.mask), 'and the mask derived here is the engine\'s');
  const seq = { ids: i32(ids, [B, T]), mask: i32(mask, [B, T]) };
  // The texts a scorer gets beside the ids (a reward model reads the ids only).
  const scoreMeta = { promptLength: P, prompts: Array<string>(B).fill('p'), answers: Array<string>(B).fill('a'), eos: Array<boolean>(B).fill(true) };

  const [actorLp, refLp, values, scores] = await Promise.all([
    call('actor', 'logprobs', {}, seq), call('reference', 'logprobs', {}, seq), call('critic', 'values', {}, seq), call('reward', 'score', scoreMeta, seq),
  ]);
  t.same(actorLp.tensors.logprobs.shape, [B, T - 1]);
  t.equal(maxDiff(actorLp.tensors.logprobs.data as Float32Array, refLp.tensors.logprobs.data as Float32Array), 0, 'reference log-probs equal the actor\'s before training');
  const s = { ids, mask, B, T };
  const inProcess = PolicyEngine.load(engineOptions('actor', args(actorDir)));
  t.ok(maxDiff(actorLp.tensors.logprobs.data as Float32Array, inProcess.logprobs(s)) < 1e-5, 'actor log-probs equal the engine in this process');
  t.same(values.tensors.values.shape, [B, T - 1]);
  t.ok(maxDiff(values.tensors.values.data as Float32Array, ValueEngine.load(engineOptions('critic', args(rmDir))).values(s)) < 1e-5, 'critic values equal the engine in this process');
  t.same(scores.tensors.scores.shape, [B]);
  const rmLocal = RewardEngine.load(engineOptions('reward', args(rmDir)));
  t.ok(maxDiff(scores.tensors.scores.data as Float32Array, rmLocal.score(s, P)) < 1e-5, 'reward scores equal the engine in this process');

  // Training calls: one optimizer step each, metrics as docs/roles.md names them.
  const A = T - 1;
  const actionMask = new Float32Array(B * A);
  for (let b = 0; b < B; b++) for (let c = P; c < T; c++) actionMask[b * A + c - 1] = mask[b * T + c];
  const adv = Float32Array.from({ length: B * A }, (_, i) => ((i % 5) - 2) / 2);
  const old = actorLp.tensors.logprobs.data as Float32Array;
  const step = { lr: 1e-3, weightDecay: 0, gradClip: 1, microBatch: 2 };
  const ppo = await call('actor', 'train_ppo', { ...step, clipRange: 0.2, ptxCoef: 0 }, { ...seq, old_logprobs: f32(old, [B, A]), advantages: f32(adv, [B, A]), action_mask: f32(actionMask, [B, A]) });
  t.match(ppo.metrics, { policy_loss: Number, clip_frac: 0, approx_kl: Number, ptx_loss: 0, grad_norm: Number });
  const after = await call('actor', 'logprobs', {}, seq);
  t.ok(maxDiff(after.tensors.logprobs.data as Float32Array, old) > 0, 'the PPO step changed the actor');
  t.equal(maxDiff((await call('reference', 'logprobs', {}, seq)).tensors.logprobs.data as Float32Array, refLp.tensors.logprobs.data as Float32Array), 0, 'the reference stays frozen');
  const lossMask = Float32Array.from(mask);
  const sft = await call('actor', 'train_sft', step, { ...seq, loss_mask: f32(lossMask, [B, T]) });
  t.ok(sft.metrics.loss > 0 && sft.metrics.tokens > 0 && sft.metrics.grad_norm > 0, 'train_sft metrics');
  const ev = await call('actor', 'eval_sft', {}, { ...seq, loss_mask: f32(lossMask, [B, T]) });
  t.equal(ev.metrics.tokens, sft.metrics.tokens);
  const oldV = values.tensors.values.data as Float32Array;
  const tv = await call('critic', 'train_value', { ...step, clipRangeValue: 0.2 }, { ...seq, old_values: f32(oldV, [B, A]), returns: f32(adv, [B, A]), action_mask: f32(actionMask, [B, A]) });
  t.match(tv.metrics, { value_loss: Number, vf_clip_frac: 0, grad_norm: Number });
  const rejIds = Int32Array.from(ids, (v, i) => (i % T >= P && mask[i] ? 40 + (v % 7) : v));
  const pair = { chosen_ids: seq.ids, chosen_mask: seq.mask, rejected_ids: i32(rejIds, [B, T]), rejected_mask: seq.mask };
  const erm = await call('reward', 'eval_rm', {}, pair);
  t.same(erm.tensors.chosen_scores.shape, [B]);
  t.ok(maxDiff(erm.tensors.chosen_scores.data as Float32Array, scores.tensors.scores.data as Float32Array) < 1e-5, 'eval_rm chosen scores equal score');
  const localRm = rmLocal.evalRm({ ids, mask, B, T }, { ids: rejIds, mask, B, T });
  t.ok(Math.abs(erm.metrics.loss - localRm.loss) < 1e-5, 'eval_rm loss equals the engine in this process');
  const trm = await call('reward', 'train_rm', step, pair);
  t.ok(Math.abs(trm.metrics.loss - localRm.loss) < 1e-5 && trm.metrics.grad_norm > 0, 'train_rm reports the loss before its step');

  // Checkpoints: a Hugging Face folder with optimizer state, loaded back.
  const ck = join(runDir, 'ckpt');
  await call('critic', 'save', { dir: ck, optimizer: true });
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'optimizer.json', 'optimizer.safetensors']) t.ok(existsSync(join(ck, f)), `critic checkpoint has ${f}`);
  t.ok(loadModel(ck).valueHead, 'v_head.weight saved');
  await call('critic', 'load', { dir: ck, optimizer: true });
  t.ok(maxDiff((await call('critic', 'values', {}, seq)).tensors.values.data as Float32Array, ValueEngine.load(engineOptions('critic', args(ck))).values(s)) < 1e-5, 'values after load equal the saved model');
  await call('actor', 'save', { dir: join(runDir, 'actor-out'), optimizer: false });
  await call('reward', 'save', { dir: join(runDir, 'rm-out'), optimizer: false });
  t.ok(existsSync(join(runDir, 'actor-out/config.json')) && !existsSync(join(runDir, 'actor-out/optimizer.json')), 'actor saved without optimizer state');
  const lpBefore = (await call('actor', 'logprobs', {}, seq)).tensors.logprobs.data as Float32Array;
  const scBefore = (await call('reward', 'score', scoreMeta, seq)).tensors.scores.data as Float32Array;
  // Reload the starting folders, then the saved ones: the saved state comes back.
  await call('actor', 'load', { dir: actorDir, optimizer: false });
  await call('reward', 'load', { dir: rmDir, optimizer: false });
  t.equal(maxDiff((await call('actor', 'logprobs', {}, seq)).tensors.logprobs.data as Float32Array, refLp.tensors.logprobs.data as Float32Array), 0, 'actor load of the SFT folder restores the reference\'s log-probs');
  await call('actor', 'load', { dir: join(runDir, 'actor-out'), optimizer: false });
  await call('reward', 'load', { dir: join(runDir, 'rm-out'), optimizer: false });
  t.equal(maxDiff((await call('actor', 'logprobs', {}, seq)).tensors.logprobs.data as Float32Array, lpBefore), 0, 'actor load of its saved folder');
  t.equal(maxDiff((await call('reward', 'score', scoreMeta, seq)).tensors.scores.data as Float32Array, scBefore), 0, 'reward load of its saved folder');
  await t.rejects(call('reward', 'load', { dir: join(runDir, 'nowhere'), optimizer: false }), { message: /nowhere/ });

  // Bad input names the tensor or key.
  await t.rejects(call('actor', 'train_ppo', { ...step, clipRange: 0.2, ptxCoef: 0 }, seq), { message: /train_ppo: tensor 'old_logprobs' is missing/ });
  await t.rejects(call('actor', 'train_sft', { weightDecay: 0, gradClip: 1, microBatch: 1 }, { ...seq, loss_mask: f32(lossMask, [B, T]) }), { message: /actor.train_sft: meta.lr is required/ });
  await t.rejects(call('actor', 'train_ppo', { ...step, ptxCoef: 0 }, seq), { message: /actor.train_ppo: meta.clipRange is required/ }, 'no role-side default for a clip range');
  await t.rejects(call('critic', 'train_value', step, seq), { message: /critic.train_value: meta.clipRangeValue is required/ });
  await t.rejects(call('actor', 'eval_dpo', { beta: 0.1 }, {}), { message: /actor.eval_dpo: meta.labelSmoothing is required/ });
  await t.rejects(call('actor', 'generate', { ...genMeta, temprature: 1 }, {}), { message: /actor.generate: meta.temprature is not a setting of this method/ });
  await t.rejects(call('reward', 'score', {}, seq), { message: /reward.score: meta.promptLength is required/ });
  await t.rejects(call('reward', 'score', { ...scoreMeta, answers: ['a'] }, seq), { message: /reward.score: meta.answers has 1 entries for \d+ rows/ });
  await t.rejects(call('actor', 'save', { dir: join(runDir, 'x') }), { message: /actor.save: meta.optimizer is required/ });
  await t.rejects(call('critic', 'values', {}, { ids: seq.ids, mask: f32(new Float32Array(B * T), [B, T]) }), { message: /values: tensor 'mask' must be i32/ });
  await rt.shutdown();
  t.same(processesMentioning(runDir), [], 'no role outlives the run');
});
