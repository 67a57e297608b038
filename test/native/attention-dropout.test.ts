// Dropout of attention probabilities in the fused kernels (native/attention*.cc):
// the forward against an unfused float64 reference (softmax, times the keep mask
// from attentionDropoutKeep, times V) on causal, padded, grouped-query and odd
// shapes; the statistics and independence of the mask; p = 0 and an all-keep mask
// against the plain kernel bit for bit; the backward against finite differences;
// thread-count agreement; argument checks.
import t from 'tap';
import { native } from '../../src/native.js';
import { assertClose, randn, sameBits, type Tolerance } from './close.js';

// As attention.test.ts: float32 kernels against float64 references, a few ulp per term
// (kept entries are scaled by 1 / (1 - p), so outputs grow by that much).
const FWD: Tolerance = { rtol: 1e-5, atol: 2e-6 };

const threadsAtStart = native.getThreads();
t.teardown(() => native.setThreads(threadsAtStart));

interface Shape {
  B: number; NH: number; NKV: number; Tq: number; Tk: number; HS: number;
  causal: boolean; pads: number[] | null;
}

interface Inputs extends Shape {
  q: Float32Array; k: Float32Array; v: Float32Array; mask: Float32Array | null; scale: number;
}

function inputs(s: Shape, seed: number): Inputs {
  const { B, NH, NKV, Tq, Tk, HS, pads } = s;
  let mask: Float32Array | null = null;
  if (pads) {
    mask = new Float32Array(B * Tk).fill(1);
    pads.forEach((p, b) => mask!.fill(0, b * Tk, b * Tk + p));
  }
  return {
    ...s, mask, scale: 1 / Math.sqrt(HS),
    q: randn(B * NH * Tq * HS, seed), k: randn(B * NKV * Tk * HS, seed + 1), v: randn(B * NKV * Tk * HS, seed + 2),
  };
}

function keepMask(x: Shape, p: number, seed: number): Float32Array {
  const z = new Float32Array(x.B * x.NH * x.Tq * x.Tk);
  native.attentionDropoutKeep(z, x.B, x.NH, x.Tq, x.Tk, p, seed);
  return z;
}

/** out = (softmax(scale q k^T + masks) * Z) v and lse, in float64, one row at a time. */
function reference(x: Inputs, z: Float32Array): { out: Float64Array; lse: Float64Array } {
  const { B, NH, NKV, Tq, Tk, HS, q, k, v, mask, scale, causal } = x;
  const out = new Float64Array(B * NH * Tq * HS), lse = new Float64Array(B * NH * Tq);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) {
    const g = b * NKV + Math.floor(h / (NH / NKV));
    for (let i = 0; i < Tq; i++) {
      const row = (b * NH + h) * Tq + i;
      let mx = -Infinity;
      for (let j = 0; j < Tk; j++) {
        const visible = (!mask || mask[b * Tk + j] !== 0) && (!causal || j <= Tk - Tq + i);
        let d = 0;
        for (let c = 0; c < HS; c++) d += q[row * HS + c] * k[(g * Tk + j) * HS + c];
        s[j] = visible ? d * scale : -Infinity;
        mx = Math.max(mx, s[j]);
      }
      if (mx === -Infinity) {
        lse[row] = -Infinity;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < Tk; j++) sum += Math.exp(s[j] - mx);
      lse[row] = mx + Math.log(sum);
      for (let j = 0; j < Tk; j++) {
        const w = (Math.exp(s[j] - mx) / sum) * z[row * Tk + j];
        if (w === 0) continue;
        for (let c = 0; c < HS; c++) out[row * HS + c] += w * v[(g * Tk + j) * HS + c];
      }
    }
  }
  return { out, lse };
}

function forward(x: Inputs, p: number, seed: number): { out: Float32Array; lse: Float32Array } {
  const out = new Float32Array(x.q.length), lse = new Float32Array(x.B * x.NH * x.Tq);
  native.attentionForward(out, lse, x.q, x.k, x.v, x.mask, x.B, x.NH, x.NKV, x.Tq, x.Tk, x.Tk, x.HS, x.scale,
    x.causal, p, seed);
  return { out, lse };
}

function backward(x: Inputs, f: { out: Float32Array; lse: Float32Array }, dout: Float32Array, p: number, seed: number) {
  const dq = new Float32Array(x.q.length).fill(NaN), dk = new Float32Array(x.k.length).fill(NaN);
  const dv = new Float32Array(x.v.length).fill(NaN);
  native.attentionBackward(dq, dk, dv, dout, x.q, x.k, x.v, f.out, f.lse, x.mask, x.B, x.NH, x.NKV, x.Tq, x.Tk, x.HS,
    x.scale, x.causal, p, seed);
  return { dq, dk, dv };
}

// Tiled path with several query blocks and key tiles (Tk > 64), HS not a multiple of the
// vector width; the decode path (<= 4 rows per kv head) that a training call with Tq = 1
// also takes; Tq < Tk, non-causal; and a row that sees no key (fully padded batch row).
const shapes: [string, Shape][] = [
  ['causal, left-padded, GQA, Tk 70 > tile, HS 20', { B: 2, NH: 4, NKV: 2, Tq: 70, Tk: 70, HS: 20, causal: true, pads: [0, 5] }],
  ['Tq 1 (decode path), GQA, padded, HS 12', { B: 2, NH: 2, NKV: 1, Tq: 1, Tk: 9, HS: 12, causal: true, pads: [3, 0] }],
  ['Tq 5 < Tk 130, non-causal, HS 64', { B: 1, NH: 3, NKV: 3, Tq: 5, Tk: 130, HS: 64, causal: false, pads: null }],
  ['a fully padded batch row, HS 7', { B: 2, NH: 2, NKV: 2, Tq: 6, Tk: 6, HS: 7, causal: true, pads: [6, 1] }],
];

t.test('forward with dropout equals softmax * keep mask * V (float64 reference)', async (t) => {
  for (const [name, s] of shapes) {
    const x = inputs(s, 100);
    for (const [p, seed] of [[0.1, 7], [0.5, 123456789]] as const) {
      const z = keepMask(x, p, seed);
      const want = reference(x, z);
      const got = forward(x, p, seed);
      assertClose(t, `${name}, p ${p}: out`, got.out, want.out, FWD);
      assertClose(t, `${name}, p ${p}: lse is the undropped softmax's`, got.lse, want.lse, FWD);
      // Without the mask the result must differ: the mask really is applied.
      const plain = reference(x, new Float32Array(z.length).fill(1));
      t.ok(plain.out.some((o, i) => Math.abs(o - got.out[i]) > 1e-3), `${name}, p ${p}: differs from no dropout`);
    }
  }
});

t.test('keep mask: values, keep fraction, different seeds and heads', async (t) => {
  const s: Shape = { B: 2, NH: 4, NKV: 4, Tq: 256, Tk: 256, HS: 1, causal: false, pads: null };
  const n = s.B * s.NH * s.Tq * s.Tk;
  for (const p of [0.1, 0.5]) {
    const z = keepMask(s, p, 42);
    const kept = z.filter((x) => x !== 0);
    const scaleValue = Math.fround(1 / Math.fround(1 - Math.fround(p)));
    t.ok(kept.every((x) => x === scaleValue), `p ${p}: every kept entry is 1 / (1 - p) = ${scaleValue}`);
    const frac = kept.length / n, sigma = Math.sqrt((p * (1 - p)) / n);
    t.ok(Math.abs(frac - (1 - p)) <= 4 * sigma, `p ${p}: keep fraction ${frac.toFixed(5)} within 4 sigma (${(4 * sigma).toFixed(5)}) of ${1 - p}`);
  }
  const p = 0.5;
  const a = keepMask(s, p, 1), b = keepMask(s, p, 2);
  const differ = (x: Float32Array, y: Float32Array) => x.reduce((c, v, i) => c + (v !== y[i] ? 1 : 0), 0) / x.length;
  // Independent masks disagree on 2 p (1 - p) = half of the entries.
  t.ok(Math.abs(differ(a, b) - 0.5) < 0.01, `seeds 1 and 2 disagree on ${differ(a, b).toFixed(4)} of the entries`);
  const head = s.Tq * s.Tk;
  t.ok(Math.abs(differ(a.subarray(0, head), a.subarray(head, 2 * head)) - 0.5) < 0.02, 'heads 0 and 1 get different masks');
  t.ok(Math.abs(differ(a.subarray(0, head), a.subarray(s.NH * head, (s.NH + 1) * head)) - 0.5) < 0.02,
    'batch rows 0 and 1 get different masks');
  t.ok(Math.abs(differ(a.subarray(0, s.Tk), a.subarray(s.Tk, 2 * s.Tk)) - 0.5) < 0.1, 'query rows 0 and 1 get different masks');
  // The mask of a sub-shape is not a prefix of a larger one's, but the same shape and seed give the same mask.
  t.ok(sameBits(keepMask(s, p, 1), a), 'the same seed gives the same mask');
});

t.test('p = 0 and an all-keep mask are the plain kernel, bit for bit', async (t) => {
  for (const [name, s] of shapes) {
    const x = inputs(s, 200);
    const dout = randn(x.q.length, 201);
    const plain = forward(x, 0, 0);
    const plainGrads = backward(x, plain, dout, 0, 0);
    const seeded = forward(x, 0, 987654321);
    t.ok(sameBits(seeded.out, plain.out) && sameBits(seeded.lse, plain.lse), `${name}: p 0 ignores the seed`);
    // p = 2^-30 keeps an entry unless its 24 hash bits are all 0, and 1 / (1 - p) rounds to 1:
    // the dropout path then multiplies by exactly 1 and must agree with the plain one bit for bit.
    const tiny = 2 ** -30;
    const seed = 5;
    const z = keepMask(x, tiny, seed);
    t.ok(z.every((v) => v === 1), `${name}: with p 2^-30 the mask keeps everything, scaled by 1`);
    const f = forward(x, tiny, seed);
    const g = backward(x, f, dout, tiny, seed);
    t.ok(sameBits(f.out, plain.out) && sameBits(f.lse, plain.lse), `${name}: all-keep dropout forward = plain forward`);
    t.ok(sameBits(g.dq, plainGrads.dq) && sameBits(g.dk, plainGrads.dk) && sameBits(g.dv, plainGrads.dv),
      `${name}: all-keep dropout backward = plain backward`);
  }
});

t.test('backward with dropout matches central finite differences', async (t) => {
  // Fixed seed: the mask is a constant and the loss sum(out * w) is smooth.
  const cases: [string, Shape][] = [
    ['causal, GQA, padded', { B: 2, NH: 4, NKV: 2, Tq: 6, Tk: 6, HS: 8, causal: true, pads: [0, 2] }],
    ['Tq 3 < Tk 70 > tile, non-causal, HS 5', { B: 1, NH: 2, NKV: 1, Tq: 3, Tk: 70, HS: 5, causal: false, pads: null }],
  ];
  const p = 0.3, seed = 2024;
  for (const [name, s] of cases) {
    const x = inputs(s, 300);
    const w = randn(x.q.length, 304);
    const loss = (): number => {
      const { out } = forward(x, p, seed);
      let l = 0;
      for (let i = 0; i < out.length; i++) l += out[i] * w[i];
      return l;
    };
    const f = forward(x, p, seed);
    const g = backward(x, f, w, p, seed);
    // float32 forward: rounding of the loss (~1e-6) over 2 eps dominates the error.
    const eps = 1e-2, tol: Tolerance = { rtol: 2e-2, atol: 2e-3 };
    for (const [arg, xs, grad] of [['q', x.q, g.dq], ['k', x.k, g.dk], ['v', x.v, g.dv]] as const) {
      const fd: number[] = [], an: number[] = [];
      for (let i = 0; i < xs.length; i += 5) {
        const x0 = xs[i];
        xs[i] = x0 + eps;
        const lp = loss();
        xs[i] = x0 - eps;
        const lm = loss();
        xs[i] = x0;
        fd.push((lp - lm) / (2 * eps));
        an.push(grad[i]);
      }
      assertClose(t, `${name}: d${arg} vs finite differences (${fd.length} coordinates)`, an, fd, tol);
    }
    // Dropout changes the gradient: the plain backward of the same inputs differs.
    const plainDv = backward(x, forward(x, 0, 0), w, 0, 0).dv;
    t.ok(plainDv.some((d, i) => Math.abs(d - g.dv[i]) > 1e-3), `${name}: dv differs from the plain kernel's`);
  }
});

t.test('1 and 2 threads agree with dropout on', async (t) => {
  const p = 0.2, seed = 77;
  const run = (s: Shape, threads: number) => {
    native.setThreads(threads);
    const x = inputs(s, 400);
    const f = forward(x, p, seed);
    return { ...f, ...backward(x, f, randn(x.q.length, 404), p, seed) };
  };
  // Enough kv heads for 2 threads: every output is computed whole by one thread.
  const wide: Shape = { B: 2, NH: 4, NKV: 2, Tq: 100, Tk: 100, HS: 24, causal: true, pads: [0, 9] };
  // One kv head: the backward splits its key blocks between threads and sums dq's parts.
  const narrow: Shape = { B: 1, NH: 4, NKV: 1, Tq: 150, Tk: 150, HS: 40, causal: true, pads: [17] };
  for (const [name, s] of [['4 kv heads', wide], ['1 kv head', narrow]] as const) {
    const one = run(s, 1), two = run(s, 2);
    native.setThreads(threadsAtStart);
    for (const k of ['out', 'lse', 'dk', 'dv'] as const) t.ok(sameBits(two[k], one[k]), `${name}: ${k} bitwise equal`);
    if (s === wide) t.ok(sameBits(two.dq, one.dq), `${name}: dq bitwise equal`);
    else assertClose(t, `${name}: dq (summed over key-block parts, as without dropout)`, two.dq, one.dq, { rtol: 1e-5, atol: 1e-6 });
  }
});

t.test('bad dropout arguments throw errors naming the function and argument', async (t) => {
  const x = inputs({ B: 1, NH: 2, NKV: 1, Tq: 3, Tk: 3, HS: 8, causal: true, pads: null }, 500);
  const out = new Float32Array(x.q.length), lse = new Float32Array(6);
  const fwd = (p: unknown, seed: unknown) => () => (native.attentionForward as (...a: unknown[]) => void)(
    out, lse, x.q, x.k, x.v, null, 1, 2, 1, 3, 3, 3, 8, 0.5, true, p, seed);
  const bwd = (p: unknown) => () => (native.attentionBackward as (...a: unknown[]) => void)(
    new Float32Array(x.q.length), new Float32Array(x.k.length), new Float32Array(x.v.length), out, x.q, x.k, x.v, out,
    lse, null, 1, 2, 1, 3, 3, 8, 0.5, true, p, 1);
  const keep = (p: unknown, seed: unknown) => () => (native.attentionDropoutKeep as (...a: unknown[]) => void)(
    new Float32Array(18), 1, 2, 3, 3, p, seed);
  const cases: [string, () => void, RegExp, RegExp][] = [
    ['p = 1', fwd(1, 0), /RangeError/, /^attentionForward: argument 'dropoutP' must be in \[0, 1\), got 1$/],
    ['p < 0', fwd(-0.1, 0), /RangeError/, /^attentionForward: argument 'dropoutP' must be in \[0, 1\), got -0.1$/],
    ['p NaN', fwd(NaN, 0), /RangeError/, /^attentionForward: argument 'dropoutP'.*nan/],
    ['p a string', fwd('0.1', 0), /TypeError/, /^attentionForward: argument 'dropoutP' must be a number, got string/],
    ['fractional seed', fwd(0.1, 1.5), /RangeError/, /^attentionForward: argument 'seed' must be an integer in \[0, 2\^53\], got 1.5/],
    ['negative seed', fwd(0.1, -1), /RangeError/, /^attentionForward: argument 'seed'/],
    ['missing dropout arguments', () => (native.attentionForward as (...a: unknown[]) => void)(
      out, lse, x.q, x.k, x.v, null, 1, 2, 1, 3, 3, 3, 8, 0.5, true), /TypeError/, /^attentionForward: expects 17 arguments, got 15/],
    ['backward p = 1.5', bwd(1.5), /RangeError/, /^attentionBackward: argument 'dropoutP' must be in \[0, 1\)/],
    ['keep mask p = 1', keep(1, 0), /RangeError/, /^attentionDropoutKeep: argument 'dropoutP'/],
    ['keep mask short out', () => native.attentionDropoutKeep(new Float32Array(17), 1, 2, 3, 3, 0.1, 0), /RangeError/,
      /^attentionDropoutKeep: argument 'out' must have at least 18 elements, got 17/],
  ];
  for (const [name, fn, type, message] of cases) {
    try {
      fn();
      t.fail(`${name}: no error thrown`);
    } catch (e) {
      t.match((e as Error).name, type, `${name}: ${(e as Error).name}`);
      t.match((e as Error).message, message, `${name}: ${(e as Error).message}`);
    }
  }
});
