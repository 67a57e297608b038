// Finite-difference gradient checks, one case per op with a backward rule
// (ruleNames() must all be covered), on awkward shapes (T = 1, sizes that are
// not a multiple of the vector width). Loss = sum(out * r) for a fixed random
// r; for a few random elements of each input, the central difference
// (L(x + h) - L(x - h)) / 2h in float32 is compared with the analytic
// gradient: |fd - an| <= 3e-3 + 2e-2 |an|. Inputs stay clear of kinks
// (relu at 0, clamp bounds, min/max ties) by at least 0.1 >> h. A few
// composed graphs (an MLP block, an attention block, a PPO loss) close the table.
import t from 'tap';
import * as T from '../../src/tensor/index.js';

const H = 1e-2;
const ATOL = 3e-3;
const RTOL = 2e-2;
const SAMPLES = 6;

type Gen = (rng: T.Rng) => T.Tensor;
interface Case {
  name: string;
  /** The ops (rule names) this case exercises. */
  ops: string[];
  /** Inputs that get gradients checked. */
  inputs: Record<string, Gen>;
  /** Constant inputs (masks, indices, positions). */
  consts?: Record<string, Gen>;
  run(x: Record<string, T.Tensor>): T.Tensor;
}

const rnd = (...shape: number[]): Gen => (rng) => T.randn(shape, rng);
const pos = (...shape: number[]): Gen => (rng) => T.rand(shape, rng, 0.5, 2);
/** Normal samples moved at least 0.1 away from each kink. */
const away = (kinks: number[], ...shape: number[]): Gen => (rng) => {
  const x = T.randn(shape, rng);
  const d = x.f32;
  for (let i = 0; i < d.length; i++) for (const k of kinks) if (Math.abs(d[i] - k) < 0.1) d[i] = k + (d[i] >= k ? 0.1 : -0.1) + 0.05;
  return x;
};
const ids = (n: number, hi: number, withIgnored = false): Gen => (rng) => {
  const v = Array.from({ length: n }, () => rng.int(hi));
  if (withIgnored) v[1] = -1;
  return T.fromI32(v);
};

const cases: Case[] = [
  { name: 'reshape', ops: ['reshape'], inputs: { x: rnd(3, 17) }, run: ({ x }) => T.reshape(x, [17, -1]) },
  { name: 'permute', ops: ['permute'], inputs: { x: rnd(2, 3, 5) }, run: ({ x }) => T.permute(x, [2, 0, 1]) },
  { name: 'split (inner dim, uneven)', ops: ['split', 'mul'], inputs: { x: rnd(3, 7) },
    run: ({ x }) => { const [a, b] = T.split(x, [3, 4], 1); return T.mul(T.reshape(a, [9]), T.sliceRows(T.reshape(b, [12]), 0, 9)); } },
  { name: 'split (outer dim)', ops: ['split'], inputs: { x: rnd(5, 3) }, run: ({ x }) => T.split(x, [2, 3], 0)[1] },
  { name: 'concat', ops: ['concat'], inputs: { a: rnd(2, 3, 2), b: rnd(2, 1, 2) }, run: ({ a, b }) => T.concat([a, b], 1) },
  { name: 'sliceRows', ops: ['sliceRows'], inputs: { x: rnd(5, 3) }, run: ({ x }) => T.sliceRows(x, 1, 4) },
  { name: 'gatherRows (repeated rows)', ops: ['gatherRows'], inputs: { x: rnd(4, 3) }, consts: { i: () => T.fromI32([2, 0, 2, 3, 2]) },
    run: ({ x, i }) => T.gatherRows(x, i) },
  { name: 'embedding', ops: ['gatherRows'], inputs: { table: rnd(6, 5) }, consts: { i: () => T.fromI32([1, 5, 1, 0], [2, 2]) },
    run: ({ table, i }) => T.embedding(i, table) },
  { name: 'affine', ops: ['affine'], inputs: { x: rnd(17) }, run: ({ x }) => T.affine(x, -1.5, 0.25) },
  { name: 'add (row broadcast)', ops: ['add'], inputs: { a: rnd(3, 17), b: rnd(17) }, run: ({ a, b }) => T.add(a, b) },
  { name: 'sub', ops: ['sub'], inputs: { a: rnd(2, 9), b: rnd(2, 9) }, run: ({ a, b }) => T.sub(a, b) },
  { name: 'sub (row broadcast)', ops: ['sub'], inputs: { a: rnd(4, 3), b: rnd(3) }, run: ({ a, b }) => T.sub(a, b) },
  { name: 'mul', ops: ['mul'], inputs: { a: rnd(19), b: rnd(19) }, run: ({ a, b }) => T.mul(a, b) },
  { name: 'mul (row broadcast)', ops: ['mul'], inputs: { a: rnd(2, 3, 5), b: rnd(3, 5) }, run: ({ a, b }) => T.mul(a, b) },
  { name: 'div', ops: ['div'], inputs: { a: rnd(11), b: pos(11) }, run: ({ a, b }) => T.div(a, b) },
  { name: 'div (row broadcast)', ops: ['div'], inputs: { a: rnd(3, 4), b: pos(4) }, run: ({ a, b }) => T.div(a, b) },
  ...(['minimum', 'maximum'] as const).flatMap((op): Case[] => [
    { name: `${op}`, ops: [op], inputs: { a: away([0], 13) }, consts: {},
      run: ({ a }) => T[op](a, T.affine(a, -1, 0)) },
    { name: `${op} (row broadcast)`, ops: [op], inputs: { a: away([0.3], 3, 5) }, consts: { b: () => T.full([5], 0.3) },
      run: ({ a, b }) => T[op](a, b) },
    { name: `${op} (scalar)`, ops: ['clamp'], inputs: { a: away([0.2], 9) }, run: ({ a }) => T[op](a, 0.2) },
  ]),
  { name: 'clamp', ops: ['clamp'], inputs: { x: away([-0.5, 0.5], 21) }, run: ({ x }) => T.clamp(x, -0.5, 0.5) },
  { name: 'exp', ops: ['exp'], inputs: { x: rnd(17) }, run: ({ x }) => T.exp(x) },
  { name: 'log', ops: ['log'], inputs: { x: pos(17) }, run: ({ x }) => T.log(x) },
  { name: 'tanh', ops: ['tanh'], inputs: { x: rnd(17) }, run: ({ x }) => T.tanh(x) },
  { name: 'sigmoid', ops: ['sigmoid'], inputs: { x: rnd(17) }, run: ({ x }) => T.sigmoid(x) },
  { name: 'logSigmoid', ops: ['logSigmoid'], inputs: { x: (rng) => T.affine(T.randn([17], rng), 4, 0) }, run: ({ x }) => T.logSigmoid(x) },
  { name: 'relu', ops: ['relu'], inputs: { x: away([0], 33) }, run: ({ x }) => T.relu(x) },
  { name: 'silu', ops: ['silu'], inputs: { x: rnd(33) }, run: ({ x }) => T.silu(x) },
  { name: 'gelu tanh', ops: ['gelu'], inputs: { x: rnd(33) }, run: ({ x }) => T.gelu(x, true) },
  { name: 'gelu erf', ops: ['gelu'], inputs: { x: rnd(33) }, run: ({ x }) => T.gelu(x, false) },
  { name: 'where', ops: ['where'], inputs: { a: rnd(2, 5), b: rnd(2, 5) }, consts: { c: () => T.tensor([1, 0, 0, 1, 1, 0, 1, 0, 0, 1], [2, 5]) },
    run: ({ a, b, c }) => T.where(c, a, b) },
  { name: 'dropout (fixed seed)', ops: ['dropout'], inputs: { x: rnd(4, 9) }, run: ({ x }) => T.dropout(x, 0.3, new T.Rng(7)) },
  { name: 'sum', ops: ['sum'], inputs: { x: rnd(3, 7) }, run: ({ x }) => T.sum(x) },
  { name: 'mean', ops: ['sum'], inputs: { x: rnd(3, 7) }, run: ({ x }) => T.mean(x) },
  { name: 'sumLastDim', ops: ['sumLastDim'], inputs: { x: rnd(2, 3, 17) }, run: ({ x }) => T.sumLastDim(x) },
  { name: 'maskedSum', ops: ['maskedSum'], inputs: { x: rnd(2, 5) }, consts: { m: () => T.tensor([1, 1, 0, 1, 0, 0, 1, 1, 1, 0], [2, 5]) },
    run: ({ x, m }) => T.maskedSum(x, m) },
  { name: 'maskedMean', ops: ['maskedSum'], inputs: { x: rnd(2, 5) }, consts: { m: () => T.tensor([1, 1, 0, 1, 0, 0, 1, 1, 1, 0], [2, 5]) },
    run: ({ x, m }) => T.maskedMean(x, m) },
  { name: 'matmul 2-D', ops: ['matmul'], inputs: { a: rnd(3, 17), b: rnd(17, 5) }, run: ({ a, b }) => T.matmul(a, b) },
  { name: 'matmul batched', ops: ['matmul'], inputs: { a: rnd(2, 3, 1, 4), b: rnd(2, 3, 4, 3) }, run: ({ a, b }) => T.matmul(a, b) },
  { name: 'matmul shared b', ops: ['matmul'], inputs: { a: rnd(2, 3, 4), b: rnd(4, 5) }, run: ({ a, b }) => T.matmul(a, b) },
  { name: 'matmul shared a', ops: ['matmul'], inputs: { a: rnd(3, 4), b: rnd(2, 4, 2) }, run: ({ a, b }) => T.matmul(a, b) },
  { name: 'linear', ops: ['linear'], inputs: { x: rnd(2, 1, 17), w: rnd(5, 17), b: rnd(5) }, run: ({ x, w, b }) => T.linear(x, w, b) },
  { name: 'linear without bias', ops: ['linear'], inputs: { x: rnd(3, 6), w: rnd(7, 6) }, run: ({ x, w }) => T.linear(x, w) },
  { name: 'layerNorm', ops: ['layerNorm'], inputs: { x: rnd(3, 17), w: rnd(17), b: rnd(17) }, run: ({ x, w, b }) => T.layerNorm(x, w, b, 1e-5) },
  { name: 'layerNorm without bias', ops: ['layerNorm'], inputs: { x: rnd(2, 9), w: rnd(9) }, run: ({ x, w }) => T.layerNorm(x, w, null, 1e-5) },
  { name: 'rmsNorm', ops: ['rmsNorm'], inputs: { x: rnd(3, 17), w: rnd(17) }, run: ({ x, w }) => T.rmsNorm(x, w, 1e-6) },
  { name: 'softmax', ops: ['softmax'], inputs: { x: rnd(3, 17) }, run: ({ x }) => T.softmax(x) },
  ...[false, true].map((il): Case => ({
    name: `rope partial, interleaved=${il}`, ops: ['rope'], inputs: { x: rnd(2, 3, 2, 6) },
    consts: { p: () => T.fromI32([0, 1, 2, 4, 5, 9], [2, 3]), f: () => T.tensor([1, 0.1]) },
    run: ({ x, p, f }) => T.rope(x, p, f, 4, il),
  })),
  { name: 'attention causal, GQA, Tq < Tk, padded keys', ops: ['attention'],
    inputs: { q: rnd(2, 4, 3, 5), k: rnd(2, 2, 5, 5), v: rnd(2, 2, 5, 5) },
    consts: { m: () => T.tensor([0, 1, 1, 1, 1, 1, 1, 1, 1, 1], [2, 5]) },
    run: ({ q, k, v, m }) => T.attention(q, k, v, { keyMask: m, causal: true }) },
  { name: 'attention non-causal, T = 1', ops: ['attention'], inputs: { q: rnd(1, 2, 1, 3), k: rnd(1, 2, 1, 3), v: rnd(1, 2, 1, 3) },
    run: ({ q, k, v }) => T.attention(q, k, v, { causal: false, scale: 0.7 }) },
  { name: 'logprobs (an ignored label)', ops: ['logprobs'], inputs: { x: rnd(4, 17) }, consts: { y: ids(4, 17, true) },
    run: ({ x, y }) => T.logprobs(x, y) },
  { name: 'crossEntropy', ops: ['logprobs', 'sum', 'affine'], inputs: { x: rnd(5, 7) }, consts: { y: ids(5, 7, true) },
    run: ({ x, y }) => T.crossEntropy(x, y) },
  // Composed graphs: fan-out, views and several rules chained.
  { name: 'composed: pre-norm MLP with residual', ops: [], inputs: { x: rnd(2, 1, 6), w: rnd(6), w1: rnd(10, 6), w2: rnd(6, 10) },
    run: ({ x, w, w1, w2 }) => T.add(x, T.linear(T.gelu(T.linear(T.rmsNorm(x, w, 1e-6), w1), true), w2)) },
  { name: 'composed: qkv views, rope, multi-head attention, output projection', ops: [],
    inputs: { x: rnd(1, 3, 8), wqkv: rnd(24, 8), wo: rnd(8, 8) },
    consts: { p: () => T.fromI32([2, 3, 4], [1, 3]), f: () => T.tensor([1, 0.3]) },
    run: ({ x, wqkv, wo, p, f }) => {
      const [q, k, v] = T.split(T.permute(T.reshape(T.linear(x, wqkv), [1, 3, 3, 2, 4]), [2, 0, 3, 1, 4]), [1, 1, 1], 0)
        .map((t) => T.reshape(t, [1, 2, 3, 4]));
      const rot = (t: T.Tensor) => T.permute(T.rope(T.permute(t, [0, 2, 1, 3]), p, f, 4, false), [0, 2, 1, 3]);
      const o = T.attention(rot(q), rot(k), v, { causal: true });
      return T.linear(T.reshape(T.permute(o, [0, 2, 1, 3]), [1, 3, 8]), wo);
    } },
  { name: 'composed: PPO clipped objective and value clipping', ops: [], inputs: { logits: rnd(5, 6), values: rnd(5) },
    consts: { y: ids(5, 6), old: (rng) => T.affine(T.randn([5], rng), 0.3, -1.8), adv: rnd(5), m: () => T.tensor([1, 1, 0, 1, 1]) },
    run: ({ logits, values, y, old, adv, m }) => {
      const ratio = T.exp(T.sub(T.logprobs(logits, y), old));
      const pg = T.maskedMean(T.maximum(T.mul(T.neg(adv), ratio), T.mul(T.neg(adv), T.clamp(ratio, 0.8, 1.2))), m);
      const vc = T.clamp(values, -0.5, 0.5);
      return T.add(pg, T.maskedSum(T.mul(vc, vc), m));
    } },
];

function lossOf(out: T.Tensor, r: Float32Array): number {
  const d = out.f32;
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i] * r[i];
  return s;
}

t.test('every op with a backward rule has a gradient case', async (tt) => {
  const covered = new Set(cases.flatMap((c) => c.ops));
  for (const op of T.ruleNames()) tt.ok(covered.has(op), `op ${op} has a finite-difference case`);
});

for (const c of cases) {
  t.test(`gradcheck ${c.name}`, async (tt) => {
    const rng = new T.Rng(42);
    const inputs: Record<string, T.Tensor> = {};
    for (const [k, g] of Object.entries(c.inputs)) inputs[k] = T.param(T.noGrad(() => g(rng)).detach());
    const all: Record<string, T.Tensor> = { ...inputs };
    for (const [k, g] of Object.entries(c.consts ?? {})) all[k] = g(rng);
    const shape = T.noGrad(() => c.run(all)).shape;
    const r = T.randn(shape, rng).f32;
    T.tidy(() => {
      const out = c.run(all);
      T.sum(T.mul(out, T.fromData(r, shape))).backward();
    });
    const evalLoss = () => T.tidy(() => lossOf(T.noGrad(() => c.run(all)), r));
    for (const [k, x] of Object.entries(inputs)) {
      const g = x.grad;
      if (g === null) {
        tt.fail(`${c.name}: ${k} got no gradient`);
        continue;
      }
      const d = x.f32;
      let worst = 0;
      let msg = '';
      for (let s = 0; s < Math.min(SAMPLES, d.length); s++) {
        const i = d.length <= SAMPLES ? s : rng.int(d.length);
        const x0 = d[i];
        d[i] = x0 + H;
        const lp = evalLoss();
        d[i] = x0 - H;
        const lm = evalLoss();
        d[i] = x0;
        const fd = (lp - lm) / (2 * H);
        const an = g.f32[i];
        const ratio = Math.abs(fd - an) / (ATOL + RTOL * Math.abs(an));
        if (!(ratio <= worst)) {
          worst = ratio;
          msg = `[${i}] analytic ${an.toPrecision(6)} vs finite difference ${fd.toPrecision(6)}`;
        }
      }
      tt.ok(worst <= 1, `${c.name}: d/d${k} ${msg} (${worst.toFixed(2)}x the tolerance)`);
    }
    for (const x of Object.values(all)) x.dispose();
  });
}
