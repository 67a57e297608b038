// The engines on a tiny random GPT-2 (2 layers, width 32, vocab 300): generation
// and log-probs agree, micro-batches give the full-batch step, SFT/PPO/value
// steps lower their own loss, save + load continue a run exactly (with LoRA
// too), and a reward model learns a synthetic preference.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answerMask, policyLoss as policyRef, valueLoss as valueRef } from '../../src/coordinator/ppo-math.js';
import { loadModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';
import { initModelFolder } from '../../src/models/init.js';
import { allocator, fromI32, noGrad, Rng } from '../../src/tensor/index.js';
import type { Seqs } from '../../src/training/batch.js';
import { engineOptions } from '../../actors/startup.js';
import { PolicyEngine } from '../../src/training/policy.js';
import { RewardEngine, pairSpans } from '../../src/training/reward.js';
import { ValueEngine } from '../../src/training/value.js';

const root = mkdtempSync(join(tmpdir(), 'quartet-engines-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'tiny');
initModelFolder(modelDir, { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 300, maxPositions: 64, seed: 11 });
const opts = (extra: Record<string, unknown> = {}) => engineOptions('test', { model: modelDir, seed: 1, ...extra });
const step = { lr: 1e-2, weightDecay: 0.01, gradClip: 1, microBatch: 0 };

/** Left-padded prompts: row b has P - b real tokens. */
function prompts(B: number, P: number, seed: number): Seqs {
  const rng = new Rng(seed);
  const ids = new Int32Array(B * P).fill(299), mask = new Int32Array(B * P);
  for (let b = 0; b < B; b++) for (let t = Math.min(b, P - 1); t < P; t++) {
    ids[b * P + t] = 3 + Math.floor(rng.uniform() * 250);
    mask[b * P + t] = 1;
  }
  return { ids, mask, B, T: P };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function paramsOf(e: { model: { namedParameters(): [string, { f32: Float32Array }][] } }): Map<string, Float32Array> {
  return new Map(e.model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.f32)]));
}

function paramsDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let m = 0;
  for (const [n, v] of a) m = Math.max(m, maxDiff(v, b.get(n)!));
  return m;
}

/** Generated experience in the layout of docs/roles.md: answers' actions masked in [B, T-1]. */
function experience(e: PolicyEngine, P: number, seed: number) {
  const p = prompts(4, P, seed);
  const g = e.generate(p, { maxNewTokens: 6, temperature: 1, topK: 0, topP: 1, seed });
  const s: Seqs = { ids: g.ids, mask: g.mask, B: 4, T: g.T };
  const A = g.T - 1;
  const actionMask = new Float32Array(4 * A);
  for (let b = 0; b < 4; b++) for (let t = P; t < g.T; t++) actionMask[b * A + t - 1] = g.mask[b * g.T + t];
  return { s, A, actionMask };
}

t.test('generate: left-padded prompts, greedy is repeatable, log-probs match generation', (t) => {
  const e = PolicyEngine.load(opts());
  const p = prompts(3, 5, 2);
  const g = e.generate(p, { maxNewTokens: 4, temperature: 0, topK: 0, topP: 1, seed: 0 });
  t.equal(g.T, 9);
  t.same(Array.from(g.ids.subarray(0, 5)), Array.from(p.ids.subarray(0, 5)), 'the prompt comes first, as sent');
  const again = e.generate(p, { maxNewTokens: 4, temperature: 0, topK: 0, topP: 1, seed: 99 });
  t.same(Array.from(again.ids), Array.from(g.ids), 'greedy ignores the seed');
  const ref = generate(e.model, p.ids, p.mask, 3, 5, { maxNewTokens: 4, doSample: false, logprobs: true });
  t.same(Array.from(ref.sequences), Array.from(g.ids), 'same tokens as the model\'s generate()');
  const lp = e.logprobs({ ids: g.ids, mask: g.mask, B: 3, T: 9 });
  t.equal(lp.length, 3 * 8);
  let worst = 0;
  for (let b = 0; b < 3; b++) for (let s = 0; s < ref.newTokens; s++) worst = Math.max(worst, Math.abs(lp[b * 8 + 4 + s] - ref.logprobs![b * ref.newTokens + s]));
  t.ok(worst < 1e-4, `log-probs of the generated tokens equal those at generation time (max diff ${worst})`);
  const sampled = e.generate(p, { maxNewTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 5 });
  const sampled2 = e.generate(p, { maxNewTokens: 4, temperature: 1, topK: 0, topP: 1, seed: 5 });
  t.same(Array.from(sampled.ids), Array.from(sampled2.ids), 'sampling is seeded');
  t.end();
});

t.test('SFT: micro-batches give the full-batch step; the loss falls', async (t) => {
  const p = prompts(3, 10, 3);
  const lossMask = Float32Array.from(p.mask);
  const full = PolicyEngine.load(opts()), micro = PolicyEngine.load(opts());
  const a = await full.trainSft(p, lossMask, step);
  const b = await micro.trainSft(p, lossMask, { ...step, microBatch: 1 });
  t.ok(Math.abs(a.loss - b.loss) < 1e-5, `loss ${a.loss} vs ${b.loss}`);
  t.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-5, `grad norm ${a.gradNorm} vs ${b.gradNorm}`);
  t.equal(a.tokens, 9 + 8 + 7, 'targets: every real token but the first of its row');
  t.ok(paramsDiff(paramsOf(full), paramsOf(micro)) < 1e-5, 'same parameters after the step');
  const ev = full.evalSft(p, lossMask);
  for (let i = 0; i < 10; i++) await full.trainSft(p, lossMask, step);
  const after = full.evalSft(p, lossMask);
  t.ok(after.loss < ev.loss - 1, `eval loss falls: ${ev.loss.toFixed(3)} -> ${after.loss.toFixed(3)}`);
  await t.rejects(full.trainSft(p, new Float32Array(30), step), /train_sft: loss_mask selects no target/);
  t.end();
});

t.test('PPO: one step lowers the clipped loss on its own batch; ptx loss is the LM loss', async (t) => {
  const e = PolicyEngine.load(opts());
  const { s, A, actionMask } = experience(e, 5, 4);
  const old = e.logprobs(s);
  const rng = new Rng(9);
  const adv = Float32Array.from({ length: 4 * A }, () => rng.uniform() * 2 - 1);
  const lossNow = () => {
    // ppo-math's reference over the same [B, A] layout: answerLens from the action mask's row sums is not a prefix here, so mask by hand.
    const lp = e.logprobs(s);
    let sum = 0, n = 0;
    for (let i = 0; i < lp.length; i++) {
      if (!actionMask[i]) continue;
      const r = Math.exp(lp[i] - old[i]);
      sum += Math.max(-adv[i] * r, -adv[i] * Math.min(Math.max(r, 0.8), 1.2));
      n++;
    }
    return sum / n;
  };
  const before = lossNow();
  const ptx = prompts(2, 8, 12);
  const ptxEval = e.evalSft(ptx, Float32Array.from(ptx.mask)).loss;
  const r = await e.trainPpo({ ...s, oldLogprobs: old, advantages: adv, actionMask }, { ...step, lr: 1e-3, clipRange: 0.2, ptxCoef: 0.5, microBatch: 3 }, ptx);
  t.ok(Math.abs(r.policyLoss - before) < 1e-5, `reported policy loss ${r.policyLoss} is the loss before the step ${before}`);
  t.equal(r.clipFrac, 0, 'nothing clipped at ratio 1');
  t.ok(Math.abs(r.approxKl) < 1e-6, 'approx KL 0 at ratio 1');
  t.ok(Math.abs(r.ptxLoss - ptxEval) < 1e-5, `ptx loss ${r.ptxLoss} is the LM loss ${ptxEval}`);
  const after = lossNow();
  t.ok(after < before - 1e-3, `policy loss falls: ${before.toFixed(4)} -> ${after.toFixed(4)}`);
  t.end();
});

t.test('policy loss of the engine equals ppo-math on answer-aligned arrays', async (t) => {
  const e = PolicyEngine.load(opts());
  const { s, A, actionMask } = experience(e, 3, 21);
  const rng = new Rng(3);
  const old = Float32Array.from(e.logprobs(s), (v) => v + (rng.uniform() - 0.5) * 0.8);
  const adv = Float32Array.from({ length: 4 * A }, () => rng.uniform() * 2 - 1);
  // Answers start at column P-1 = 2 of [B, T-1] and are prefixes there, as ppo-math expects.
  const cut = (x: Float32Array) => Float32Array.from({ length: 4 * (A - 2) }, (_, i) => x[Math.floor(i / (A - 2)) * A + 2 + (i % (A - 2))]);
  const lens = Int32Array.from({ length: 4 }, (_, b) => cut(actionMask).subarray(b * (A - 2), (b + 1) * (A - 2)).reduce((x, y) => x + y, 0));
  t.same(Array.from(answerMask({ B: 4, A: A - 2, answerLens: lens })), Array.from(cut(actionMask)), 'action masks are answer prefixes');
  const ref = policyRef({ B: 4, A: A - 2, answerLens: lens, logprobs: cut(e.logprobs(s)), oldLogprobs: cut(old), advantages: cut(adv), clipRange: 0.2 });
  const r = await e.trainPpo({ ...s, oldLogprobs: old, advantages: adv, actionMask }, { ...step, clipRange: 0.2, ptxCoef: 0 }, null);
  t.ok(Math.abs(r.policyLoss - ref.loss) < 1e-5, `loss ${r.policyLoss} vs ${ref.loss}`);
  t.ok(Math.abs(r.clipFrac - ref.clipFrac) < 1e-9 && ref.clipFrac > 0, `clip fraction ${r.clipFrac} vs ${ref.clipFrac}`);
  t.ok(Math.abs(r.approxKl - ref.approxKl) < 1e-5, `approx KL ${r.approxKl} vs ${ref.approxKl}`);
  t.end();
});

t.test('critic: values [B, T-1]; a value step lowers the clipped value loss', async (t) => {
  const actor = PolicyEngine.load(opts());
  const { s, A, actionMask } = experience(actor, 4, 6);
  const c = ValueEngine.load(opts());
  const v0 = c.values(s);
  t.equal(v0.length, 4 * A);
  const rng = new Rng(2);
  const returns = Float32Array.from({ length: 4 * A }, () => rng.uniform());
  const lens = Int32Array.from({ length: 4 }, () => A);
  const lossNow = () => valueRef({ B: 4, A, answerLens: lens, values: c.values(s).map((v, i) => (actionMask[i] ? v : 0)), oldValues: v0.map((v, i) => (actionMask[i] ? v : 0)), returns: returns.map((v, i) => (actionMask[i] ? v : 0)), clipRangeValue: 0.2 }).loss * 4 * A / actionMask.reduce((a, b) => a + b, 0);
  const before = lossNow();
  const r = await c.trainValue({ ...s, oldValues: v0, returns, actionMask }, { ...step, lr: 3e-4, clipRangeValue: 0.2, microBatch: 2 });
  t.ok(Math.abs(r.valueLoss - before) < 1e-5, `reported loss ${r.valueLoss} equals the reference ${before}`);
  const after = lossNow();
  t.ok(after < before, `value loss falls: ${before.toFixed(4)} -> ${after.toFixed(4)}`);
  t.end();
});

t.test('save + load into a fresh engine continues exactly (plain and LoRA); the folder loads as a model', async (t) => {
  for (const lora of [null, { dim: 4, alpha: 2, moduleNames: ['attn'], onlyOptimizeLora: false, lr: 1e-2 }]) {
    const extra = lora ? { training: { lr: 1e-2, dropout: false, gradientCheckpointing: false, lora } } : {};
    const p = prompts(2, 8, 5);
    const lm = Float32Array.from(p.mask);
    const a = PolicyEngine.load(opts(extra));
    await a.trainSft(p, lm, step);
    const dir = join(root, lora ? 'ckpt-lora' : 'ckpt');
    for (let i = 0; i < 5; i++) a.model.rng.uniform(); // as dropout would have drawn
    a.save(dir, true);
    const b = PolicyEngine.load(opts(extra));
    t.notSame(b.model.rng.getState(), a.model.rng.getState());
    b.load(dir, true);
    t.same(b.model.rng.getState(), a.model.rng.getState(), 'the dropout generator continues where it was');
    t.equal(paramsDiff(paramsOf(a), paramsOf(b)), 0, `${lora ? 'LoRA: ' : ''}loaded parameters equal the saved ones`);
    await a.trainSft(p, lm, step);
    await b.trainSft(p, lm, step);
    t.equal(paramsDiff(paramsOf(a), paramsOf(b)), 0, `${lora ? 'LoRA: ' : ''}the next step gives identical parameters`);
    // The folder alone (merged weights) is a plain model with the engine's outputs.
    const plain = loadModel(dir);
    a.save(dir, false);
    const reread = loadModel(dir);
    const ids = fromI32(p.ids, [2, 8]);
    const got = noGrad(() => Float32Array.from(reread.forward(ids).f32));
    const want = noGrad(() => Float32Array.from(a.model.forward(ids).f32));
    t.ok(maxDiff(got, want) < 1e-5, `${lora ? 'LoRA merged: ' : ''}saved folder gives the engine's logits`);
    t.ok(plain.cfg.vocabSize === 300);
  }
  t.end();
});

t.test('reward: divergence spans, scores at the last real token, a learnable preference is learnt', async (t) => {
  const T = 10;
  // chosen [5 6 7 8 9 p p ...], rejected [5 6 7 4 p p ...]: diverge at 3, later end 5.
  const mk = (rows: number[][]): Seqs => {
    const ids = new Int32Array(rows.length * T).fill(299), mask = new Int32Array(rows.length * T);
    rows.forEach((r, b) => r.forEach((v, i) => { ids[b * T + i] = v; mask[b * T + i] = 1; }));
    return { ids, mask, B: rows.length, T };
  };
  t.same(pairSpans(mk([[5, 6, 7, 8, 9], [1, 2, 3]]), mk([[5, 6, 7, 4], [1, 2, 3]])), [
    { div: 3, end: 5, chosenLast: 4, rejectedLast: 3 },
    { div: 2, end: 3, chosenLast: 2, rejectedLast: 2 },
  ]);
  const rm = RewardEngine.load(opts());
  const s = mk([[5, 6, 7, 8, 9], [1, 2, 3]]);
  const v = noGrad(() => Float32Array.from(rm.model.values(fromI32(s.ids, [2, T]), { mask: s.mask }).f32));
  const sc = rm.score(s, 2);
  t.ok(Math.abs(sc[0] - v[4]) < 1e-5 && Math.abs(sc[1] - v[T + 2]) < 1e-5, 'score = value at the last real token (right padding)');
  // Pad id = eos (299): an eos the mask calls real is scored; the pads after it are not.
  const withEos = mk([[5, 6, 7, 299], [1, 299, 3]]);
  const ve = noGrad(() => Float32Array.from(rm.model.values(fromI32(withEos.ids, [2, T]), { mask: withEos.mask }).f32));
  const se = rm.score(withEos, 1);
  t.ok(Math.abs(se[0] - ve[3]) < 1e-5 && Math.abs(se[1] - ve[T + 2]) < 1e-5, 'the mask, not the pad id, finds the last real token');

  // Preference: answers with more tokens from 10..29 are chosen.
  const rng = new Rng(17);
  const pairs = (n: number) => {
    const c: number[][] = [], r: number[][] = [];
    for (let i = 0; i < n; i++) {
      const prompt = Array.from({ length: 3 }, () => 100 + Math.floor(rng.uniform() * 100));
      const good = Array.from({ length: 4 }, () => 10 + Math.floor(rng.uniform() * 20));
      const bad = Array.from({ length: 4 }, () => 40 + Math.floor(rng.uniform() * 50));
      c.push([...prompt, ...good]);
      r.push([...prompt, ...bad]);
    }
    return [mk(c), mk(r)] as const;
  };
  const [hc, hr] = pairs(32);
  const before = rm.evalRm(hc, hr);
  for (let i = 0; i < 30; i++) {
    const [c, r] = pairs(16);
    await rm.trainRm(c, r, { ...step, lr: 3e-3, microBatch: 8 });
  }
  const after = rm.evalRm(hc, hr);
  t.ok(after.acc >= 0.85, `held-out accuracy ${before.acc.toFixed(2)} -> ${after.acc.toFixed(2)}`);
  t.ok(after.loss < before.loss, `held-out loss ${before.loss.toFixed(3)} -> ${after.loss.toFixed(3)}`);
  t.ok(after.chosenMean > after.rejectedMean);
  t.end();
});

t.test('PPO steps keep the allocator flat; generation and log-probs too', async (t) => {
  const e = PolicyEngine.load(opts());
  const { s, A, actionMask } = experience(e, 4, 8);
  const adv = Float32Array.from({ length: 4 * A }, (_, i) => (i % 3) - 1);
  const inUse: number[] = [];
  for (let i = 0; i < 6; i++) {
    e.generate(prompts(4, 4, 8), { maxNewTokens: 6, temperature: 1, topK: 0, topP: 1, seed: i });
    const old = e.logprobs(s);
    await e.trainPpo({ ...s, oldLogprobs: old, advantages: adv, actionMask }, { ...step, lr: 1e-4, clipRange: 0.2, ptxCoef: 0, microBatch: 2 }, null);
    inUse.push(allocator.stats().bytesInUse);
  }
  t.same(inUse.slice(2), Array(4).fill(inUse[2]), `bytes in use after each step: ${inUse.join(', ')}`);
  t.end();
});

t.test('EMA of the actor: updated after each PPO step, saved on request, resumed exactly', async (t) => {
  const e = PolicyEngine.load(opts(), 0.75);
  const before = Float32Array.from(e.model.p('h.0.qkv.w').f32);
  const { s, A, actionMask } = experience(e, 4, 13);
  const adv = Float32Array.from({ length: 4 * A }, (_, i) => (i % 3) - 1);
  const train = (x: PolicyEngine) => x.trainPpo({ ...s, oldLogprobs: x.logprobs(s), advantages: adv, actionMask }, { ...step, lr: 1e-3, clipRange: 0.2, ptxCoef: 0 }, null);
  await train(e);
  const now = e.model.p('h.0.qkv.w').f32;
  const ema = e.ema!.params.get('h.0.qkv.w')!.data;
  t.ok(maxDiff(ema, before.map((b, i) => 0.75 * b + 0.25 * now[i])) < 1e-7, 'ema = beta * ema + (1 - beta) * weights');
  const dir = join(root, 'ema');
  e.saveEma(dir);
  t.equal(maxDiff(loadModel(dir).p('h.0.qkv.w').f32, ema), 0, 'saveEma writes the average');
  e.save(join(root, 'ema-resume'), true);
  const b = PolicyEngine.load(opts(), 0.75);
  b.load(join(root, 'ema-resume'), true);
  await train(e);
  await train(b);
  t.equal(maxDiff(b.ema!.params.get('h.0.qkv.w')!.data, e.ema!.params.get('h.0.qkv.w')!.data), 0, 'the average resumes exactly');
  t.throws(() => PolicyEngine.load(opts()).saveEma(dir), /keeps no moving average/);
  t.end();
});
