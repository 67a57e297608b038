// 1 versus 2 kernel threads for every kernel of the ops family, at sizes above the
// threading thresholds (native/parallel.h). These kernels split work so that no sum
// depends on the thread count (rows stay on one thread; cross-row sums add fixed blocks
// in a fixed order), so the results must be bitwise identical, which is stronger than
// the "within rounding" the contract asks for. The two runs also start from different
// garbage in every output (NaN, then 7), which checks that outputs are overwritten,
// never accumulated into.
import t from 'tap';
import { native } from '../../src/native.js';
import { randn, sameBits } from './close.js';

const N = 96, C = 768, V = 1200, n = N * C;
const x = randn(n, 1, 2), y = randn(n, 2), w = randn(C, 3, 0.5), b = randn(C, 4, 0.1);
const dout = randn(n, 5);
const logits = randn(N * V, 6, 3);
const labels = Int32Array.from({ length: N }, (_, i) => (i % 7 === 0 ? -1 : (i * 131) % V));
const idx = Int32Array.from({ length: 4 * N }, (_, i) => (i * 37) % 50);

let garbage = 0;
/** A fresh output array holding garbage the kernel must overwrite. */
const out = (size: number) => new Float32Array(size).fill(garbage);

/** Each case runs its kernels and returns what they wrote (or returned). */
const cases: Record<string, () => (Float32Array | number | boolean)[]> = {
  elementwise() {
    const outs = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'].map(() => out(n));
    native.add(outs[0], x, y);
    native.sub(outs[1], x, y);
    native.mul(outs[2], x, y);
    native.div(outs[3], x, y);
    native.maximum(outs[4], x, y);
    native.minimum(outs[5], x, y);
    const more = [out(n), out(n), out(n), out(n)];
    native.affine(more[0], x, 0.3, -1);
    native.axpy(more[1], x, 0.7, y);
    native.where(more[2], y, x, dout);
    native.clampBackward(more[3], x, dout, -0.5, 0.5);
    return [...outs, ...more];
  },
  unary() {
    const fns = [native.exp, native.tanh, native.sigmoid, native.logSigmoid, native.relu, native.silu];
    const outs = fns.map((f) => {
      const o = out(n);
      f(o, x);
      return o;
    });
    const g = [out(n), out(n), out(n), out(n)];
    native.gelu(g[0], x, true);
    native.geluBackward(g[1], x, dout, true);
    native.geluBackward(g[2], x, dout, false);
    native.siluBackward(g[3], x, dout);
    const d = [out(n), out(n)];
    native.dropout(d[0], d[1], x, 0.1, 7);
    return [...outs, ...g, ...d];
  },
  rows() {
    const o = [out(n), out(C), out(N)];
    native.addRow(o[0], x, w, N, C);
    native.sumRows(o[1], x, N, C);
    native.sumCols(o[2], x, N, C);
    return [...o, native.sumAll(x), native.sumSquares(x), native.allFinite(x)];
  },
  layout() {
    const p = out(n), g = out(idx.length * C), s = out(50 * C);
    native.permute(p, x, [4, 24, 12, 64], [0, 2, 1, 3]);
    native.gatherRows(g, x, idx, C);
    native.scatterAddRows(s, g, idx, 50, C);
    return [p, g, s];
  },
  norms() {
    const ln = out(n), mean = out(N), rstd = out(N);
    native.layerNormForward(ln, mean, rstd, x, w, b, N, C, 1e-5);
    const dx = out(n), dw = out(C), db = out(C);
    native.layerNormBackward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    const rout = out(n), rr = out(N), rdx = out(n), rdw = out(C);
    native.rmsNormForward(rout, rr, x, w, N, C, 1e-6);
    native.rmsNormBackward(rdx, rdw, dout, x, w, rr, N, C);
    return [ln, mean, rstd, dx, dw, db, rout, rr, rdx, rdw];
  },
  softmaxAndLosses() {
    const s = out(n), ds = out(n);
    native.softmaxForward(s, x, N, C);
    native.softmaxBackward(ds, s, dout, N, C);
    const lp = out(N), lse = out(N), dz = out(N * V);
    native.logprobsForward(lp, lse, logits, labels, N, V);
    native.logprobsBackward(dz, dout.subarray(0, N), logits, lse, labels, N, V);
    return [s, ds, lp, lse, dz];
  },
  adamwAndConvert() {
    const p = x.slice(), m = new Float32Array(n), v = new Float32Array(n);  // state: zero
    native.adamw(p, y, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1);
    native.adamw(p, dout, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, 2);
    const h = new Uint16Array(n), bh = new Uint16Array(n), back = out(n), bback = out(n);
    native.f32ToF16(h, x);
    native.f32ToBf16(bh, x);
    native.f16ToF32(back, h);
    native.bf16ToF32(bback, bh);
    return [p, m, v, back, bback];
  },
};

t.test('1 and 2 threads give bitwise identical results', async (t) => {
  const before = native.getThreads();
  t.teardown(() => native.setThreads(before));
  for (const [name, run] of Object.entries(cases)) {
    native.setThreads(1);
    t.equal(native.getThreads(), 1, 'setThreads(1) took');
    garbage = Number.NaN;
    const one = run();
    native.setThreads(2);
    garbage = 7;
    const two = run();
    one.forEach((a, i) => {
      const bB = two[i];
      const same = a instanceof Float32Array ? sameBits(a, bB as Float32Array) : a === bB;
      t.ok(same, `${name}: output ${i} agrees`);
    });
  }
});
