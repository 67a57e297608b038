// The autograd losses of src/training/losses.ts against the plain references:
// src/coordinator/ppo-math.ts for the clipped policy and value losses (values
// and gradients on random cases, tolerance 1e-5), and DeepSpeed-Chat's
// pairwise reward loss written out here over plain numbers.
import t from 'tap';
import { answerMask, policyLoss as policyRef, valueLoss as valueRef } from '../../src/coordinator/ppo-math.js';
import { Rng, fromData, param, tidy } from '../../src/tensor/index.js';
import { pairwiseLoss, policyLoss, valueLoss } from '../../src/training/losses.js';

const TOL = 1e-5;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function randomCase(seed: number) {
  const rng = new Rng(seed);
  const B = 1 + Math.floor(rng.uniform() * 4), A = 1 + Math.floor(rng.uniform() * 9);
  const answerLens = Int32Array.from({ length: B }, () => Math.floor(rng.uniform() * (A + 1)));
  answerLens[0] = Math.max(1, answerLens[0]);
  const normal = (scale: number) => Float32Array.from({ length: B * A }, () => scale * (rng.uniform() * 2 - 1));
  return { B, A, answerLens, normal };
}

t.test('clipped policy loss: value, gradient, clip fraction and KL equal ppo-math on random cases', (t) => {
  for (let seed = 1; seed <= 40; seed++) {
    const { B, A, answerLens, normal } = randomCase(seed);
    const old = normal(2);
    // Spread log-ratios over +-0.6 so that both branches of the clip are taken.
    const logp = Float32Array.from(old, (v, i) => v + normal(0.6)[i]);
    const adv = normal(1.5);
    const mask = answerMask({ B, A, answerLens });
    const ref = policyRef({ B, A, answerLens, logprobs: logp, oldLogprobs: old, advantages: adv, clipRange: 0.2 });
    const x = param(fromData(Float32Array.from(logp), [B, A]));
    const { loss, stats } = tidy(() => policyLoss(x, fromData(old, [B, A]), fromData(adv, [B, A]), fromData(mask, [B, A]), 0.2, answerLens.reduce((a, b) => a + b, 0)));
    loss.backward();
    const count = answerLens.reduce((a, b) => a + b, 0);
    const dLoss = Math.abs(loss.item() - ref.loss), dGrad = maxAbsDiff(x.grad!.f32, ref.grad);
    if (dLoss > TOL || dGrad > TOL) t.fail(`seed ${seed}: loss ${loss.item()} vs ${ref.loss}, gradient max diff ${dGrad}`);
    t.equal(stats.clipped / count, ref.clipFrac, `seed ${seed}: clip fraction`);
    t.ok(Math.abs(stats.klSum / count - ref.approxKl) < TOL, `seed ${seed}: approx KL ${stats.klSum / count} vs ${ref.approxKl}`);
    loss.dispose();
    x.dispose();
  }
  t.end();
});

t.test('clipped value loss: value, gradient and clip fraction equal ppo-math on random cases', (t) => {
  for (let seed = 100; seed < 140; seed++) {
    const { B, A, answerLens, normal } = randomCase(seed);
    const old = normal(1);
    const values = Float32Array.from(old, (v, i) => v + normal(0.5)[i]);
    const returns = normal(1.5);
    const mask = answerMask({ B, A, answerLens });
    const ref = valueRef({ B, A, answerLens, values, oldValues: old, returns, clipRangeValue: 0.2 });
    const count = answerLens.reduce((a, b) => a + b, 0);
    const x = param(fromData(Float32Array.from(values), [B, A]));
    const { loss, clipped } = tidy(() => valueLoss(x, fromData(old, [B, A]), fromData(returns, [B, A]), fromData(mask, [B, A]), 0.2, count));
    loss.backward();
    const dLoss = Math.abs(loss.item() - ref.loss), dGrad = maxAbsDiff(x.grad!.f32, ref.grad);
    if (dLoss > TOL || dGrad > TOL) t.fail(`seed ${seed}: loss ${loss.item()} vs ${ref.loss}, gradient max diff ${dGrad}`);
    t.equal(clipped / count, ref.clipFrac, `seed ${seed}: clip fraction`);
    loss.dispose();
    x.dispose();
  }
  t.end();
});

t.test('pairwise loss equals mean over pairs of mean -log sigmoid(c - r), with its gradient', (t) => {
  const rng = new Rng(7);
  // Two pairs compare 3 and 2 positions.
  const spans = [3, 2];
  const c = Float32Array.from({ length: 5 }, () => rng.uniform() * 4 - 2);
  const r = Float32Array.from({ length: 5 }, () => rng.uniform() * 4 - 2);
  const weight = Float32Array.from([1 / 6, 1 / 6, 1 / 6, 1 / 4, 1 / 4]);
  const nll = (d: number) => Math.log1p(Math.exp(-d));
  let ref = 0, at = 0;
  const refGrad = new Float64Array(5);
  for (const n of spans) {
    for (let i = at; i < at + n; i++) {
      ref += nll(c[i] - r[i]) / n / spans.length;
      refGrad[i] = -(1 / (1 + Math.exp(c[i] - r[i]))) / n / spans.length;
    }
    at += n;
  }
  const ct = param(fromData(Float32Array.from(c), [5, 1]));
  const rt = param(fromData(Float32Array.from(r), [5, 1]));
  const loss = tidy(() => pairwiseLoss(ct, rt, weight));
  loss.backward();
  t.ok(Math.abs(loss.item() - ref) < TOL, `loss ${loss.item()} vs ${ref}`);
  t.ok(maxAbsDiff(ct.grad!.f32, refGrad) < TOL, 'gradient of chosen');
  t.ok(maxAbsDiff(rt.grad!.f32, refGrad.map((g) => -g)) < TOL, 'gradient of rejected is its negative');
  t.throws(() => pairwiseLoss(ct, rt, new Float32Array(4)), /pairwiseLoss: chosen has 5 values/);
  t.end();
});
