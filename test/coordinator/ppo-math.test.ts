// The coordinator's PPO math against worked examples (arithmetic in the
// comments), against a line-by-line transcription of DeepSpeed-Chat's
// ppo_trainer.py loops, and the reference gradients against finite differences.
import t, { type Test } from 'tap';
import {
  answerLengths, answerMask, answersToKeep, computeRewards, gatherRows, klStats, policyLoss, sliceAnswers, valueLoss,
} from '../../src/coordinator/ppo-math.js';
import { gae, groupAdvantages, GRPO_EPS } from '../../src/coordinator/advantages.js';

const f32 = (xs: number[]) => Float32Array.from(xs);
const i32 = (xs: number[]) => Int32Array.from(xs);
const TOL = 1e-5;

function close(t: Test, got: ArrayLike<number>, want: number[], msg: string, tol = TOL) {
  t.equal(got.length, want.length, `${msg}: length`);
  const worst = Math.max(0, ...want.map((w, i) => Math.abs(got[i] - w)));
  t.ok(worst <= tol, `${msg}: max |diff| ${worst.toExponential(2)} <= ${tol} (got ${Array.from(got).map((v) => v.toFixed(6))})`);
}

// A seeded generator so the random cases are the same every run.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('computeRewards: KL on every answer token, clipped score on the last, zero after', async (t) => {
  // Two answers, widths 3 and 2, klCtl 0.1, scores clipped to [-5, 5].
  // row 0: -0.1*(-1 - -1.5) = -0.05;  -0.1*(-2 - -2) = 0;  -0.1*(-0.5 - -1) = -0.05, + clip(7) = 5 -> 4.95
  // row 1: -0.1*(-1 - -0.5) = 0.05;   -0.1*(-1 - -1) = 0, + clip(-2) = -2 -> -2;  padding -> 0
  const r = computeRewards({
    B: 2, A: 3, answerLens: i32([3, 2]),
    logprobs: f32([-1, -2, -0.5, -1, -1, 0]),
    refLogprobs: f32([-1.5, -2, -1, -0.5, -1, 9]),
    scores: f32([7, -2]), klCtl: 0.1, clipRewardValue: 5,
  });
  close(t, r, [-0.05, 0, 4.95, 0.05, -2, 0], 'rewards');
});

t.test('gae: worked example with gamma 1, lambda 0.95', async (t) => {
  // row 0: r = [-0.05, 0, 4.95], V = [1, 2, 3]
  //   t=2: delta = 4.95 + 0 - 3 = 1.95;              A = 1.95;                      R = 4.95
  //   t=1: delta = 0 + 3 - 2 = 1;                    A = 1 + 0.95*1.95 = 2.8525;    R = 4.8525
  //   t=0: delta = -0.05 + 2 - 1 = 0.95;             A = 0.95 + 0.95*2.8525 = 3.659875; R = 4.659875
  // row 1: r = [0.05, -2], V = [0.5, -1] (the 7 is padding and must not leak in)
  //   t=1: delta = -2 + 0 - (-1) = -1;               A = -1;                        R = -2
  //   t=0: delta = 0.05 + (-1) - 0.5 = -1.45;        A = -1.45 + 0.95*(-1) = -2.4;  R = -1.9
  const { advantages, returns } = gae({
    B: 2, A: 3, answerLens: i32([3, 2]),
    rewards: f32([-0.05, 0, 4.95, 0.05, -2, 0]), values: f32([1, 2, 3, 0.5, -1, 7]),
    gamma: 1, lambda: 0.95,
  });
  close(t, advantages, [3.659875, 2.8525, 1.95, -2.4, -1, 0], 'advantages');
  close(t, returns, [4.659875, 4.8525, 4.95, -1.9, -2, 0], 'returns');
});

t.test('gae: lambda 1 with zero values gives discounted returns', async (t) => {
  // r = [0, 1], V = 0, gamma 0.5: A_1 = 1, A_0 = 0 + 0.5*1 = 0.5; returns equal advantages.
  const { advantages, returns } = gae({ B: 1, A: 2, answerLens: i32([2]), rewards: f32([0, 1]), values: f32([0, 0]), gamma: 0.5, lambda: 1 });
  close(t, advantages, [0.5, 1], 'advantages');
  close(t, returns, [0.5, 1], 'returns');
});

t.test('policy loss: worked example', async (t) => {
  // old logp 0; new ratios 1.5, 0.9, 0.5; advantages 1, -2, -1; clip 0.2, 3 tokens.
  //   t0: -1*1.5 = -1.5 vs -1*clamp(1.5) = -1.2 -> max -1.2 (clipped: no gradient)
  //   t1: 2*0.9 = 1.8 vs 2*0.9 = 1.8            -> 1.8  (d/dlogp = -adv*ratio/3 = 0.6)
  //   t2: 1*0.5 = 0.5 vs 1*clamp(0.5) = 0.8     -> 0.8  (clipped)
  //   loss = (-1.2 + 1.8 + 0.8)/3 = 0.466667; clip fraction 2/3
  //   k3 KL: sum of (r - 1 - ln r) = 0.094535 + 0.005361 + 0.193147 = 0.293043; / 3 = 0.097681
  const r = policyLoss({
    B: 1, A: 3, answerLens: i32([3]),
    logprobs: f32([Math.log(1.5), Math.log(0.9), Math.log(0.5)]), oldLogprobs: f32([0, 0, 0]),
    advantages: f32([1, -2, -1]), clipRange: 0.2,
  });
  close(t, [r.loss], [1.4 / 3], 'loss');
  close(t, r.grad, [0, 0.6, 0], 'grad');
  close(t, [r.clipFrac, r.approxKl], [2 / 3, 0.293043 / 3], 'clipFrac, approxKl');
});

t.test('value loss: worked example', async (t) => {
  // values [1, 0.5, 2], old [0.5, 0.5, 1], returns [2, 0, 1.1], clip 0.2, 3 tokens.
  //   t0: v clipped to 0.7; (1-2)^2 = 1 vs (0.7-2)^2 = 1.69 -> 1.69 (clipped: no gradient)
  //   t1: v in range;       0.25 vs 0.25                     -> 0.25 (d/dv = (0.5-0)/3)
  //   t2: v clipped to 1.2; (2-1.1)^2 = 0.81 vs 0.01         -> 0.81 (d/dv = (2-1.1)/3 = 0.3)
  //   loss = 0.5*(1.69 + 0.25 + 0.81)/3 = 0.458333; clip fraction 1/3
  const r = valueLoss({
    B: 1, A: 3, answerLens: i32([3]),
    values: f32([1, 0.5, 2]), oldValues: f32([0.5, 0.5, 1]), returns: f32([2, 0, 1.1]), clipRangeValue: 0.2,
  });
  close(t, [r.loss, r.clipFrac], [0.5 * 2.75 / 3, 1 / 3], 'loss, clipFrac');
  close(t, r.grad, [0, 0.5 / 3, 0.3], 'grad');
});

t.test('losses ignore padding and an empty batch gives zeros', async (t) => {
  const base = { B: 2, A: 2, answerLens: i32([1, 2]) };
  const p1 = policyLoss({ ...base, logprobs: f32([0.1, 99, 0.2, -0.1]), oldLogprobs: f32([0, -99, 0, 0]), advantages: f32([1, 50, -1, 2]), clipRange: 0.2 });
  const p2 = policyLoss({ ...base, logprobs: f32([0.1, 0, 0.2, -0.1]), oldLogprobs: f32([0, 0, 0, 0]), advantages: f32([1, 0, -1, 2]), clipRange: 0.2 });
  t.equal(p1.loss, p2.loss, 'values in padding do not matter');
  t.equal(p1.grad[1], 0);
  const empty = valueLoss({ B: 1, A: 2, answerLens: i32([0]), values: f32([1, 2]), oldValues: f32([0, 0]), returns: f32([5, 5]), clipRangeValue: 0.2 });
  t.same([empty.loss, empty.clipFrac], [0, 0]);
});

t.test('reference gradients agree with finite differences', async (t) => {
  const rand = rng(7);
  const B = 3, A = 5, answerLens = i32([5, 3, 4]);
  const n = B * A;
  const make = (scale: number) => Float32Array.from({ length: n }, () => (rand() - 0.5) * scale);
  const old = make(1), adv = make(4), lp = Float32Array.from(old, (o) => o + (rand() - 0.5) * 0.6);
  const oldV = make(2), ret = make(3), v = Float32Array.from(oldV, (o) => o + (rand() - 0.5) * 0.8);
  const pol = (x: Float32Array) => policyLoss({ B, A, answerLens, logprobs: x, oldLogprobs: old, advantages: adv, clipRange: 0.2 });
  const val = (x: Float32Array) => valueLoss({ B, A, answerLens, values: x, oldValues: oldV, returns: ret, clipRangeValue: 0.2 });
  for (const [name, fn, x] of [['policy', pol, lp], ['value', val, v]] as const) {
    const { grad } = fn(x);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      // float64 central differences: the loss is piecewise smooth, h small enough to stay on one piece
      const h = 1e-3;
      const up = Float32Array.from(x); up[i] += h;
      const dn = Float32Array.from(x); dn[i] -= h;
      const fd = (fn(up).loss - fn(dn).loss) / (up[i] - dn[i]);
      worst = Math.max(worst, Math.abs(fd - grad[i]));
    }
    t.ok(worst < 2e-3, `${name}: max |analytic - numeric| = ${worst.toExponential(2)} < 2e-3`);
  }
});

// DeepSpeed-Chat's compute_rewards, the zeroing in train_rlhf and
// get_advantages_and_returns, transcribed loop for loop over whole sequences:
// logprobs, values [B, T-1]; start = prompt width - 1; action_mask = attention_mask[:, 1:].
function deepSpeedChatReference(B: number, T: number, P: number, lp: number[][], ref: number[][], values: number[][],
  scores: number[], actionMask: number[][], klCtl: number, clipReward: number, gamma: number, lam: number) {
  const start = P - 1;
  const rewards = lp.map((row, b) => row.map((l, j) => -klCtl * (l - ref[b][j])));
  const ends = actionMask.map((m) => start + m.slice(start).reduce((a, c) => a + c, 0) + 1);
  for (let j = 0; j < B; j++) {
    const seg = Math.min(ends[j], T - 1); // python slicing: rewards[j, start:ends[j]][-1]
    rewards[j][seg - 1] += Math.max(-clipReward, Math.min(clipReward, scores[j]));
  }
  const vals = values.map((r) => [...r]);
  for (let i = 0; i < B; i++) for (let k = ends[i]; k < T - 1; k++) { rewards[i][k] = 0; vals[i][k] = 0; }
  const length = T - 1;
  const adv = Array.from({ length: B }, () => new Array<number>(length - start).fill(0));
  for (let b = 0; b < B; b++) {
    let last = 0;
    for (let t2 = length - 1; t2 >= start; t2--) {
      const next = t2 < length - 1 ? vals[b][t2 + 1] : 0;
      const delta = rewards[b][t2] + gamma * next - vals[b][t2];
      last = delta + gamma * lam * last;
      adv[b][t2 - start] = last;
    }
  }
  const returns = adv.map((row, b) => row.map((a, k) => a + vals[b][start + k]));
  return { rewards: rewards.map((r) => r.slice(start)), adv, returns };
}

t.test('matches DeepSpeed-Chat on full-length answers (where its end index is exact)', async (t) => {
  const rand = rng(11);
  const B = 4, P = 5, A = 6, T = P + A;
  const rows = (scale: number) => Array.from({ length: B }, () => Array.from({ length: T - 1 }, () => (rand() - 0.5) * scale));
  const lp = rows(2), ref = rows(2), values = rows(3);
  const scores = [7.5, -1.25, 0.5, -9];
  const actionMask = Array.from({ length: B }, () => new Array<number>(T - 1).fill(1));
  const want = deepSpeedChatReference(B, T, P, lp, ref, values, scores, actionMask, 0.1, 5, 1.0, 0.95);

  const flat = (r: number[][]) => Float32Array.from(r.flat());
  const batch = { B, A, answerLens: new Int32Array(B).fill(A) };
  const logprobs = sliceAnswers(flat(lp), B, T - 1, P - 1, A);
  const refLogprobs = sliceAnswers(flat(ref), B, T - 1, P - 1, A);
  const rewards = computeRewards({ ...batch, logprobs, refLogprobs, scores: f32(scores), klCtl: 0.1, clipRewardValue: 5 });
  const { advantages, returns } = gae({ ...batch, rewards, values: sliceAnswers(flat(values), B, T - 1, P - 1, A), gamma: 1, lambda: 0.95 });
  close(t, rewards, want.rewards.flat(), 'rewards', 1e-5);
  close(t, advantages, want.adv.flat(), 'advantages', 1e-4);
  close(t, returns, want.returns.flat(), 'returns', 1e-4);
});

t.test('shorter answers: the score goes on the last real token, not one past it as in DeepSpeed-Chat', async (t) => {
  // One answer of 2 tokens in a batch of width 3: DeepSpeed-Chat's `ends` puts
  // the score at index 2 (padding); here it is on index 1 and index 2 is 0.
  const r = computeRewards({ B: 1, A: 3, answerLens: i32([2]), logprobs: f32([0, 0, 0.5]), refLogprobs: f32([0, 0, 0]), scores: f32([1]), klCtl: 0.1, clipRewardValue: 5 });
  close(t, r, [0, 1, 0], 'rewards');
  const ds = deepSpeedChatReference(1, 5, 2, [[0, 0, 0, 0.5]], [[0, 0, 0, 0]], [[0, 0, 0, 0]], [1], [[1, 1, 1, 0]], 0.1, 5, 1, 0.95);
  close(t, ds.rewards[0], [0, 0, 1 - 0.05], 'DeepSpeed-Chat puts it one token later (and keeps that KL term)');
});

t.test('GRPO and RLOO group advantages', async (t) => {
  // GRPO, groups of 2, no KL (logp = ref): scores [1, 3] -> mean 2, std (n-1) = sqrt(2) -> -+1/(sqrt 2 + 1e-4)
  // scores [-10, 10] are clipped to [-5, 5] first -> -+5/(sqrt(50) + 1e-4)
  const zeros = new Float32Array(4 * 2);
  const g = groupAdvantages({
    B: 4, A: 2, answerLens: i32([2, 1, 2, 2]), algorithm: 'grpo', groupSize: 2,
    scores: f32([1, 3, -10, 10]), logprobs: zeros, refLogprobs: zeros, klCtl: 0.1, clipRewardValue: 5,
  });
  const a = 1 / (Math.SQRT2 + GRPO_EPS), b = 5 / (Math.sqrt(50) + GRPO_EPS);
  close(t, g.advantages, [-a, -a, a, 0, -b, -b, b, b], 'grpo advantages on every answer token, 0 on padding');
  // RLOO, one group of 3, scores clipped to [-10, 10]: scores [1, 2, 6]; row 2 has KL sum 2
  // (logp - ref = 1 on two tokens) -> R = 6 - 0.1*2 = 5.8
  //   A_0 = 1 - (2 + 5.8)/2 = -2.9; A_1 = 2 - (1 + 5.8)/2 = -1.4; A_2 = 5.8 - 1.5 = 4.3
  const lp = f32([0, 0, 0, 0, 1, 1]);
  const r = groupAdvantages({
    B: 3, A: 2, answerLens: i32([2, 2, 2]), algorithm: 'rloo', groupSize: 3,
    scores: f32([1, 2, 6]), logprobs: lp, refLogprobs: new Float32Array(6), klCtl: 0.1, clipRewardValue: 10,
  });
  close(t, r.returns, [1, 2, 5.8], 'returns with the KL penalty');
  close(t, r.advantages, [-2.9, -2.9, -1.4, -1.4, 4.3, 4.3], 'rloo advantages');
  t.throws(() => groupAdvantages({ B: 3, A: 2, answerLens: i32([2, 2, 2]), algorithm: 'rloo', groupSize: 2, scores: f32([1, 2, 6]), logprobs: lp, refLogprobs: lp, klCtl: 0, clipRewardValue: 5 }),
    /B=3 rows do not divide into groups of 2/);
});

t.test('answer lengths from generated ids', async (t) => {
  // prompt width 2, T 6; eos 9, pad 0
  //   row 0: answer 5 6 9 0 -> 3 (the eos counts)    row 1: 5 6 7 8 -> 4 (ran to the end)
  //   row 2: 0 0 0 0 -> 0                             row 3: 9 ... -> 1 (eos at once)
  const seq = i32([1, 2, 5, 6, 9, 0, 1, 2, 5, 6, 7, 8, 0, 2, 0, 0, 0, 0, 3, 4, 9, 0, 0, 0]);
  t.same(Array.from(answerLengths(seq, 4, 6, 2, 9, 0)), [3, 4, 0, 1]);
  // pad = eos (GPT-2): the first eos still ends the answer and counts
  t.same(Array.from(answerLengths(i32([1, 5, 9, 9]), 1, 4, 1, 9, 9)), [2]);
  t.same(answersToKeep(answerLengths(seq, 4, 6, 2, 9, 0)), [0, 1], 'answers of 0 and 1 token are dropped');
});

t.test('dropping answers of at most one token, masks, slicing, KL metrics', async (t) => {
  const lens = i32([3, 1, 0, 2]);
  t.same(answersToKeep(lens), [0, 3]);
  t.same(Array.from(gatherRows(f32([1, 2, 3, 4, 5, 6, 7, 8]), 2, [0, 3])), [1, 2, 7, 8]);
  t.same(Array.from(gatherRows(lens, 1, [0, 3])), [3, 2]);
  t.same(Array.from(answerMask({ B: 2, A: 3, answerLens: i32([1, 3]) })), [1, 0, 0, 1, 1, 1]);
  // [B=2, W=4] -> columns 1..2
  t.same(Array.from(sliceAnswers(f32([0, 1, 2, 3, 4, 5, 6, 7]), 2, 4, 1, 2)), [1, 2, 5, 6]);
  t.throws(() => sliceAnswers(f32([0, 1, 2, 3]), 1, 4, 3, 2), /outside/);
  // KL: row 0 sums 0.5 + 0.25 = 0.75 over 2 tokens, row 1 sums 1 over 1 token -> per sequence 0.875, per token 1.75/3
  const kl = klStats({ B: 2, A: 2, answerLens: i32([2, 1]) }, f32([1, 0.5, 2, 100]), f32([0.5, 0.25, 1, 0]));
  close(t, [kl.klPerSequence, kl.klPerToken], [0.875, 1.75 / 3], 'kl');
  // k3 per token: e^-d - 1 + d for d = logp - ref = 0.5, 0.25 (row 0) and 1 (row 1).
  const k3 = (d: number) => Math.exp(-d) - 1 + d;
  close(t, [kl.klK3PerSequence], [(k3(0.5) + k3(0.25) + k3(1)) / 2], 'k3 kl');
  const below = klStats({ B: 1, A: 2, answerLens: i32([2]) }, f32([0.1, -0.3]), f32([0.2, -0.1]));
  t.ok(below.klPerSequence < 0 && below.klK3PerSequence > 0, 'a batch whose plain estimate is negative has a positive k3 estimate');
  t.throws(() => computeRewards({ B: 1, A: 2, answerLens: i32([3]), logprobs: f32([0, 0]), refLogprobs: f32([0, 0]), scores: f32([0]), klCtl: 0.1, clipRewardValue: 5 }),
    /computeRewards: answerLens\[0\] = 3 is outside 0..A=2/);
  t.throws(() => gae({ B: 1, A: 2, answerLens: i32([2]), rewards: f32([0]), values: f32([0, 0]), gamma: 1, lambda: 1 }), /gae: rewards has 1 entries/);
});
