// The DPO loss of src/training/losses.ts against numbers written out by hand
// and a central finite difference; the actor engine's DPO step on a tiny
// random GPT-2: against itself as the reference the loss is log 2 and the
// implicit rewards 0, micro-batches give the full-batch gradient step, and
// training raises the chosen answers' margin.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { answerSums, answerTargets } from '../../src/coordinator/dpo.js';
import { initModelFolder } from '../../src/models/init.js';
import { fromData, noGrad, param, Rng, tidy } from '../../src/tensor/index.js';
import { dpoLoss } from '../../src/training/losses.js';
import { engineOptions } from '../../actors/startup.js';
import { type DpoBatch, PolicyEngine } from '../../src/training/policy.js';

const logSig = (x: number) => -Math.log1p(Math.exp(-x));

t.test('dpoLoss: a hand-computed case, with and without label smoothing', (t) => {
  const pc = [-3, -5], pr = [-4, -2], rc = [-3.5, -4], rr = [-3.5, -3];
  // z = (pc - pr) - (rc - rr): (1) - (0) = 1 and (-3) - (-1) = -2.
  const beta = 0.5;
  for (const eps of [0, 0.1]) {
    const want = ((-(1 - eps) * logSig(0.5) - eps * logSig(-0.5)) + (-(1 - eps) * logSig(-1) - eps * logSig(1))) / 2;
    const loss = tidy(() => dpoLoss(fromData(Float32Array.from(pc), [2]), fromData(Float32Array.from(pr), [2]),
      Float32Array.from(rc), Float32Array.from(rr), beta, eps, 2).item());
    t.ok(Math.abs(loss - want) < 1e-6, `eps ${eps}: loss ${loss} equals ${want} (tol 1e-6)`);
  }
  t.end();
});

t.test('dpoLoss: gradients equal a central finite difference (tol 2e-3 relative)', (t) => {
  const rng = new Rng(5);
  const B = 4;
  const rnd = () => Float32Array.from({ length: B }, () => -10 * rng.uniform());
  const pc = rnd(), pr = rnd(), rc = rnd(), rr = rnd();
  const f = (c: Float32Array, r: Float32Array) => noGrad(() => tidy(() => dpoLoss(fromData(c, [B]), fromData(r, [B]), rc, rr, 0.3, 0.05, B).item()));
  const xc = param(fromData(Float32Array.from(pc), [B])), xr = param(fromData(Float32Array.from(pr), [B]));
  tidy(() => dpoLoss(xc, xr, rc, rr, 0.3, 0.05, B).backward());
  const h = 1e-2;
  for (const [name, x, base] of [['chosen', xc, pc], ['rejected', xr, pr]] as const) {
    for (let i = 0; i < B; i++) {
      const up = Float32Array.from(base), down = Float32Array.from(base);
      up[i] += h;
      down[i] -= h;
      const fd = name === 'chosen' ? (f(up, pr) - f(down, pr)) / (2 * h) : (f(pc, up) - f(pc, down)) / (2 * h);
      const g = x.grad!.f32[i];
      t.ok(Math.abs(g - fd) <= 2e-3 * Math.max(1e-2, Math.abs(fd)) + 1e-6, `d loss / d ${name}[${i}]: autograd ${g.toExponential(4)}, finite difference ${fd.toExponential(4)}`);
    }
  }
  t.throws(() => dpoLoss(xc, xr, rc, rr, 0, 0, B), /beta must be > 0/, 'beta 0 is refused by name');
  t.throws(() => dpoLoss(xc, xr, rc.subarray(1), rr, 0.1, 0, B), /dpoLoss: .*expected \[B\]/, 'a short reference array is refused');
  t.end();
});

const root = mkdtempSync(join(tmpdir(), 'quartet-dpo-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'tiny');
initModelFolder(modelDir, { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 300, maxPositions: 64, seed: 11 });
const opts = () => engineOptions('test', { model: modelDir, seed: 1 });

/** B pairs of right-padded rows: a shared prompt of P tokens, then answers of different lengths. */
function pairs(B: number, P: number, T: number, seed: number) {
  const rng = new Rng(seed);
  const tok = () => 3 + Math.floor(rng.uniform() * 250);
  const ids = new Int32Array(2 * B * T).fill(299), mask = new Int32Array(2 * B * T);
  const promptLens = new Int32Array(B).fill(P);
  for (let b = 0; b < B; b++) {
    const prompt = Array.from({ length: P }, tok);
    for (const [row, len] of [[b, T - P - (b % 3)], [B + b, T - P - ((b + 1) % 3)]]) {
      for (let t = 0; t < P + len; t++) {
        ids[row * T + t] = t < P ? prompt[t] : tok();
        mask[row * T + t] = 1;
      }
    }
  }
  return { ids, mask, promptLens, B, T };
}

/** The batch as the coordinator builds it, with the reference's sums from `logprobs` of `ref`. */
function batchOf(ref: PolicyEngine, p: ReturnType<typeof pairs>): DpoBatch {
  const { B, T } = p, n = B * T, A = T - 1;
  const chosen = { ids: p.ids.slice(0, n), mask: p.mask.slice(0, n), B, T };
  const rejected = { ids: p.ids.slice(n), mask: p.mask.slice(n), B, T };
  const chosenAnswer = answerTargets(chosen.mask, p.promptLens, B, T), rejectedAnswer = answerTargets(rejected.mask, p.promptLens, B, T);
  return {
    chosen, rejected, chosenAnswer, rejectedAnswer,
    refChosen: answerSums(ref.logprobs(chosen), chosenAnswer, B, A),
    refRejected: answerSums(ref.logprobs(rejected), rejectedAnswer, B, A),
  };
}

t.test('PolicyEngine DPO: log 2 against itself, micro-batches equal the full batch, training raises the margin', async (t) => {
  const p = pairs(6, 4, 12, 3);
  const ref = PolicyEngine.load(opts());
  const batch = batchOf(ref, p);
  const first = ref.evalDpo(batch, 0.1, 0);
  t.ok(Math.abs(first.loss - Math.LN2) < 1e-5, `policy = reference: loss ${first.loss} is log 2 (tol 1e-5)`);
  t.ok(Math.abs(first.margin) < 1e-5 && Math.abs(first.chosenReward) < 1e-5, 'and the implicit rewards are 0');

  const st = { lr: 3e-3, weightDecay: 0, gradClip: 0, beta: 0.1, labelSmoothing: 0 };
  const whole = PolicyEngine.load(opts()), split = PolicyEngine.load(opts());
  const a = await whole.trainDpo(batch, { ...st, microBatch: 0 });
  const b = await split.trainDpo(batch, { ...st, microBatch: 4 });
  t.ok(Math.abs(a.loss - b.loss) < 1e-5 && Math.abs(a.gradNorm - b.gradNorm) < 1e-4 * a.gradNorm,
    `micro-batches of 4: loss ${b.loss} vs ${a.loss}, grad norm ${b.gradNorm} vs ${a.gradNorm}`);
  let maxDiff = 0;
  const wp = whole.model.parameters(), sp = split.model.parameters();
  for (let i = 0; i < wp.length; i++) for (let j = 0; j < wp[i].size; j++) maxDiff = Math.max(maxDiff, Math.abs(wp[i].f32[j] - sp[i].f32[j]));
  t.ok(maxDiff < 1e-5, `the same weights after the step (max diff ${maxDiff.toExponential(2)}, tol 1e-5)`);

  for (let i = 0; i < 5; i++) await whole.trainDpo(batch, { ...st, microBatch: 0 });
  const after = whole.evalDpo(batch, 0.1, 0);
  t.ok(after.loss < first.loss - 0.05 && after.margin > 0 && after.acc > 0.5,
    `six steps on the batch: loss ${first.loss.toFixed(4)} -> ${after.loss.toFixed(4)}, margin ${after.margin.toFixed(4)}, accuracy ${after.acc}`);
  // An empty answer mask is refused where the batch enters the role: test/actors/requests.test.ts.
});
