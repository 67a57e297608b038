// Finite-difference checks of every backward kernel of the ops family (gemm and
// attention have their own tests). For random directions u, the change of
// L = sum(forward(x) * dout) between x - h u and x + h u (computed with the float32
// forward kernel, summed in double) must match the analytic sum(grad * step) from the
// backward kernel. The step is taken as the float32 difference actually applied, so
// rounding of x + h u does not count as error. Tolerance: 1e-3 relative plus a floor
// for the float32 noise of the forward (stated per case).
import t from 'tap';
import type { Test } from 'tap';
import { native } from '../../src/native.js';
import { randn, rng } from './close.js';

interface FdCase {
  name: string;
  inputs: Float32Array[];
  /** The forward kernel over the (perturbed) inputs. */
  forward: (xs: Float32Array[]) => Float32Array;
  /** Gradients of sum(out * dout) from the backward kernel, one per input (null: no gradient). */
  grads: (Float32Array | null)[];
  dout: Float32Array;
  h: number;
  /** Absolute slack for float32 noise in the forward. */
  floor: number;
}

function lossOf(out: Float32Array, dout: Float32Array): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * dout[i];
  return s;
}

function fdCheck(t: Test, c: FdCase, seed: number): void {
  for (let dir = 0; dir < 3; dir++) {
    const plus: Float32Array[] = [], minus: Float32Array[] = [];
    let analytic = 0;
    c.inputs.forEach((x, k) => {
      const u = randn(x.length, seed * 31 + dir * 7 + k);
      const xp = new Float32Array(x.length), xm = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        xp[i] = x[i] + c.h * u[i];
        xm[i] = x[i] - c.h * u[i];
      }
      const g = c.grads[k];
      if (g) {
        for (let i = 0; i < x.length; i++) analytic += g[i] * (xp[i] - xm[i]);
      } else {
        xp.set(x);
        xm.set(x);
      }
      plus.push(xp);
      minus.push(xm);
    });
    const numeric = lossOf(c.forward(plus), c.dout) - lossOf(c.forward(minus), c.dout);
    const err = Math.abs(numeric - analytic);
    const tol = 1e-3 * Math.abs(analytic) + c.floor;
    t.ok(err <= tol, `${c.name}, direction ${dir}: finite difference ${numeric.toExponential(6)}, ` +
      `backward ${analytic.toExponential(6)} (|diff| ${err.toExponential(2)}, tol ${tol.toExponential(2)})`);
  }
}

/** n uniform floats in [lo, hi) that keep at least `gap` away from each kink. */
function awayFrom(n: number, seed: number, lo: number, hi: number, kinks: number[], gap: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x: number;
    do x = lo + (hi - lo) * r(); while (kinks.some((k) => Math.abs(x - k) < gap));
    out[i] = x;
  }
  return out;
}

const H = 1e-2;

function unaryCase(name: string, x: Float32Array, fwd: (o: Float32Array, a: Float32Array) => void,
  bwd: (d: Float32Array, a: Float32Array, g: Float32Array) => void): FdCase {
  const dout = randn(x.length, 99);
  const dx = new Float32Array(x.length);
  bwd(dx, x, dout);
  return {
    name, inputs: [x], dout, grads: [dx], h: H, floor: 1e-5,
    forward: ([a]) => {
      const o = new Float32Array(a.length);
      fwd(o, a);
      return o;
    },
  };
}

const cases: (() => FdCase)[] = [
  () => unaryCase('gelu tanh', randn(37, 1, 2), (o, a) => native.gelu(o, a, true),
    (d, a, g) => native.geluBackward(d, a, g, true)),
  () => unaryCase('gelu erf', randn(37, 2, 2), (o, a) => native.gelu(o, a, false),
    (d, a, g) => native.geluBackward(d, a, g, false)),
  () => unaryCase('silu', randn(37, 3, 3), native.silu, native.siluBackward),
  // The step is at most 4h per element; inputs keep 0.1 away from the kinks.
  () => unaryCase('relu', awayFrom(37, 4, -2, 2, [0], 0.1), native.relu, native.reluBackward),
  () => unaryCase('clamp', awayFrom(37, 5, -2, 2, [-0.5, 0.7], 0.1), (o, a) => native.clamp(o, a, -0.5, 0.7),
    (d, a, g) => native.clampBackward(d, a, g, -0.5, 0.7)),
  () => {
    const N = 3, C = 37;
    const x = randn(N * C, 6, 2), w = randn(C, 7, 0.5), b = randn(C, 8, 0.1), dout = randn(N * C, 9);
    const fwd = ([x, w, b]: Float32Array[]) => {
      const o = new Float32Array(N * C);
      native.layerNormForward(o, new Float32Array(N), new Float32Array(N), x, w, b, N, C, 1e-5);
      return o;
    };
    const mean = new Float32Array(N), rstd = new Float32Array(N);
    native.layerNormForward(new Float32Array(N * C), mean, rstd, x, w, b, N, C, 1e-5);
    const dx = new Float32Array(N * C), dw = new Float32Array(C), db = new Float32Array(C);
    native.layerNormBackward(dx, dw, db, dout, x, w, mean, rstd, N, C);
    return { name: 'layerNorm (x, weight, bias)', inputs: [x, w, b], forward: fwd, grads: [dx, dw, db], dout, h: H, floor: 1e-4 };
  },
  () => {
    const N = 3, C = 37;
    const x = randn(N * C, 10), w = randn(C, 11, 0.5), dout = randn(N * C, 12);
    const fwd = ([x, w]: Float32Array[]) => {
      const o = new Float32Array(N * C);
      native.rmsNormForward(o, new Float32Array(N), x, w, N, C, 1e-6);
      return o;
    };
    const rstd = new Float32Array(N);
    native.rmsNormForward(new Float32Array(N * C), rstd, x, w, N, C, 1e-6);
    const dx = new Float32Array(N * C), dw = new Float32Array(C);
    native.rmsNormBackward(dx, dw, dout, x, w, rstd, N, C);
    return { name: 'rmsNorm (x, weight)', inputs: [x, w], forward: fwd, grads: [dx, dw], dout, h: H, floor: 1e-4 };
  },
  () => {
    const N = 3, C = 37;
    const x = randn(N * C, 13, 2), dout = randn(N * C, 14);
    const fwd = ([x]: Float32Array[]) => {
      const o = new Float32Array(N * C);
      native.softmaxForward(o, x, N, C);
      return o;
    };
    const dx = new Float32Array(N * C);
    native.softmaxBackward(dx, fwd([x]), dout, N, C);
    return { name: 'softmax', inputs: [x], forward: fwd, grads: [dx], dout, h: H, floor: 1e-5 };
  },
  () => {
    const N = 4, V = 37;
    const logits = randn(N * V, 15, 2), dout = randn(N, 16);
    const labels = new Int32Array([3, -1, 36, 0]);
    const fwd = ([z]: Float32Array[]) => {
      const o = new Float32Array(N);
      native.logprobsForward(o, new Float32Array(N), z, labels, N, V);
      return o;
    };
    const lse = new Float32Array(N);
    native.logprobsForward(new Float32Array(N), lse, logits, labels, N, V);
    const dz = new Float32Array(N * V);
    native.logprobsBackward(dz, dout, logits, lse, labels, N, V);
    return { name: 'logprobs (one ignored label)', inputs: [logits], forward: fwd, grads: [dz], dout, h: H, floor: 1e-5 };
  },
  () => {
    // A linear map: the difference is exact up to float32 rounding of the sums.
    const R = 6, C = 5, idx = new Int32Array([2, 0, 2, 5, 2]);
    const table = randn(R * C, 17), dout = randn(idx.length * C, 18);
    const fwd = ([w]: Float32Array[]) => {
      const o = new Float32Array(idx.length * C);
      native.gatherRows(o, w, idx, C);
      return o;
    };
    const dw = new Float32Array(R * C);
    native.scatterAddRows(dw, dout, idx, R, C);
    return { name: 'gatherRows via scatterAddRows (repeated indices)', inputs: [table], forward: fwd, grads: [dw], dout, h: H, floor: 1e-5 };
  },
];

cases.forEach((make, i) => {
  const c = make();
  t.test(c.name, async (t) => fdCheck(t, c, i + 1));
});
