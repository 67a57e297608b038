// Every kernel outside gemm and attention against the PyTorch fixtures of
// scripts/fixtures/ops.py (float64 references; the tolerance of each op is stated
// where it is checked). One checker per fixture `op`; a fixture op without a checker
// fails the test, so a new case cannot be silently skipped.
import t from 'tap';
import type { Test } from 'tap';
import { native } from '../../src/native.js';
import { assertClose, EXACT, type Tolerance } from './close.js';
import { loadOpCases, type OpCase } from './ops-fixtures.js';

const num = (c: OpCase, k: string) => c.args[k] as number;

// One correctly rounded float32 operation on float32 inputs equals the float64 result
// rounded to float32, so the plain arithmetic ops are compared exactly.
const binaryOps: Record<string, (o: Float32Array, a: Float32Array, b: Float32Array) => void> = {
  add: native.add, sub: native.sub, mul: native.mul, div: native.div,
  maximum: native.maximum, minimum: native.minimum,
};

// Forward tolerances of the unary maps against float64: exp-based maps use the
// vectorised exp (about 1 ulp) plus the rounding of their own arithmetic.
const unaryOps: Record<string, { fwd: (o: Float32Array, a: Float32Array) => void; tol: Tolerance;
  bwd?: (d: Float32Array, a: Float32Array, g: Float32Array) => void }> = {
  exp: { fwd: native.exp, tol: { rtol: 3e-7, atol: 1e-44 } },
  log: { fwd: native.log, tol: { rtol: 2e-7, atol: 1e-7 } },
  tanh: { fwd: native.tanh, tol: { rtol: 3e-7, atol: 1e-7 } },
  sigmoid: { fwd: native.sigmoid, tol: { rtol: 5e-7, atol: 1e-8 } },
  logSigmoid: { fwd: native.logSigmoid, tol: { rtol: 5e-7, atol: 1e-7 } },
  relu: { fwd: native.relu, tol: EXACT, bwd: native.reluBackward },
  silu: { fwd: native.silu, tol: { rtol: 1e-6, atol: 1e-7 }, bwd: native.siluBackward },
  geluTanh: {
    fwd: (o, a) => native.gelu(o, a, true), tol: { rtol: 1e-6, atol: 1e-7 },
    bwd: (d, a, g) => native.geluBackward(d, a, g, true),
  },
  geluErf: {
    fwd: (o, a) => native.gelu(o, a, false), tol: { rtol: 1e-6, atol: 1e-7 },
    bwd: (d, a, g) => native.geluBackward(d, a, g, false),
  },
};
const UNARY_GRAD_TOL: Tolerance = { rtol: 2e-6, atol: 1e-6 };

const checkers: Record<string, (t: Test, c: OpCase) => void> = {
  affine(t, c) {
    const a = c.f32('a'), out = new Float32Array(a.length);
    native.affine(out, a, num(c, 'alpha'), num(c, 'beta'));
    assertClose(t, 'out', out, c.f32('out'), { rtol: 3e-7, atol: 1e-7 });
    native.affine(a, a, num(c, 'alpha'), num(c, 'beta'));
    assertClose(t, 'in place', a, out, EXACT);
  },
  axpy(t, c) {
    const a = c.f32('a'), b = c.f32('b'), out = new Float32Array(a.length);
    native.axpy(out, a, num(c, 'alpha'), b);
    // alpha is rounded to float32 before the product: a few ulps of b.
    assertClose(t, 'out', out, c.f32('out'), { rtol: 3e-7, atol: 3e-7 });
    native.axpy(a, a, num(c, 'alpha'), b);
    assertClose(t, 'in place', a, out, EXACT);
  },
  where(t, c) {
    const out = new Float32Array(c.f32('a').length);
    native.where(out, c.f32('cond'), c.f32('a'), c.f32('b'));
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  },
  clamp(t, c) {
    const a = c.f32('a'), out = new Float32Array(a.length), dinp = new Float32Array(a.length);
    native.clamp(out, a, num(c, 'lo'), num(c, 'hi'));
    native.clampBackward(dinp, a, c.f32('dout'), num(c, 'lo'), num(c, 'hi'));
    assertClose(t, 'out', out, c.f32('out'), EXACT);
    assertClose(t, 'dinp', dinp, c.f32('dinp'), EXACT);
  },
  reluSpecial(t, c) {
    const a = c.f32('a'), out = new Float32Array(a.length);
    native.relu(out, a);
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  },
  clampSpecial(t, c) {
    const a = c.f32('a'), out = new Float32Array(a.length);
    native.clamp(out, a, num(c, 'lo'), num(c, 'hi'));
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  },
  addRow(t, c) {
    const out = new Float32Array(c.f32('a').length);
    native.addRow(out, c.f32('a'), c.f32('b'), num(c, 'N'), num(c, 'C'));
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  },
  mulRow(t, c) {
    const out = new Float32Array(c.f32('a').length);
    native.mulRow(out, c.f32('a'), c.f32('b'), num(c, 'N'), num(c, 'C'));
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  },
  sumRows(t, c) {
    const out = new Float32Array(num(c, 'C'));
    native.sumRows(out, c.f32('a'), num(c, 'N'), num(c, 'C'));
    // float32 sums of up to 16 normal values.
    assertClose(t, 'out', out, c.f32('out'), { rtol: 1e-6, atol: 2e-6 });
  },
  sumCols(t, c) {
    const out = new Float32Array(num(c, 'N'));
    native.sumCols(out, c.f32('a'), num(c, 'N'), num(c, 'C'));
    // float32 sums of up to 768 normal values: about sqrt(768) * 6e-8 * |terms|.
    assertClose(t, 'out', out, c.f32('out'), { rtol: 1e-6, atol: 1e-5 });
  },
  sumAll(t, c) {
    const a = c.f32('a');
    // Accumulated in double: equal to torch's float64 sum up to double rounding.
    assertClose(t, 'sumAll', [native.sumAll(a)], [num(c, 'sum')], { rtol: 1e-12, atol: 1e-12 });
    assertClose(t, 'sumSquares', [native.sumSquares(a)], [num(c, 'sumSquares')], { rtol: 1e-12, atol: 1e-12 });
  },
  permute(t, c) {
    const inp = c.f32('inp'), out = new Float32Array(inp.length);
    native.permute(out, inp, c.args.shape as number[], c.args.perm as number[]);
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  },
  gatherRows(t, c) {
    const C = num(c, 'C'), R = num(c, 'R'), idx = c.i32('idx');
    const out = new Float32Array(idx.length * C);
    native.gatherRows(out, c.f32('inp'), idx, C);
    assertClose(t, 'gather', out, c.f32('out'), EXACT);
    const dinp = new Float32Array(R * C).fill(Number.NaN);  // must be overwritten
    native.scatterAddRows(dinp, c.f32('dout'), idx, R, C);
    assertClose(t, 'scatter-add (gather backward)', dinp, c.f32('dinp'), { rtol: 1e-6, atol: 1e-6 });
  },
  layerNorm(t, c) {
    const N = num(c, 'N'), C = num(c, 'C'), bias = c.args.bias as boolean;
    const out = new Float32Array(N * C), mean = new Float32Array(N), rstd = new Float32Array(N);
    const inp = c.f32('inp'), w = c.f32('weight'), b = bias ? c.f32('bias') : null;
    native.layerNormForward(out, mean, rstd, inp, w, b, N, C, num(c, 'eps'));
    // LayerNorm: float32 row statistics over up to 768 values.
    const tol = { rtol: 1e-5, atol: 1e-5 };
    assertClose(t, 'out', out, c.f32('out'), tol);
    assertClose(t, 'mean', mean, c.f32('mean'), tol);
    assertClose(t, 'rstd', rstd, c.f32('rstd'), tol);
    const dinp = new Float32Array(N * C), dw = new Float32Array(C).fill(Number.NaN);
    const db = bias ? new Float32Array(C).fill(Number.NaN) : null;
    native.layerNormBackward(dinp, dw, db, c.f32('dout'), inp, w, mean, rstd, N, C);
    // Gradients: dinp from two row reductions; dweight/dbias sum up to 70 rows.
    assertClose(t, 'dinp', dinp, c.f32('dinp'), { rtol: 1e-4, atol: 2e-5 });
    assertClose(t, 'dweight', dw, c.f32('dweight'), { rtol: 1e-5, atol: 2e-5 });
    if (db) assertClose(t, 'dbias', db, c.f32('dbias'), { rtol: 1e-5, atol: 2e-5 });
  },
  rmsNorm(t, c) {
    const N = num(c, 'N'), C = num(c, 'C');
    const out = new Float32Array(N * C), rstd = new Float32Array(N);
    const inp = c.f32('inp'), w = c.f32('weight');
    native.rmsNormForward(out, rstd, inp, w, N, C, num(c, 'eps'));
    assertClose(t, 'out', out, c.f32('out'), { rtol: 1e-5, atol: 1e-6 });
    assertClose(t, 'rstd', rstd, c.f32('rstd'), { rtol: 1e-5, atol: 1e-6 });
    const dinp = new Float32Array(N * C), dw = new Float32Array(C).fill(Number.NaN);
    native.rmsNormBackward(dinp, dw, c.f32('dout'), inp, w, rstd, N, C);
    assertClose(t, 'dinp', dinp, c.f32('dinp'), { rtol: 1e-4, atol: 1e-5 });
    assertClose(t, 'dweight', dw, c.f32('dweight'), { rtol: 1e-5, atol: 2e-5 });
  },
  softmax(t, c) {
    const N = num(c, 'N'), C = num(c, 'C');
    const out = new Float32Array(N * C), dinp = new Float32Array(N * C);
    native.softmaxForward(out, c.f32('inp'), N, C);
    assertClose(t, 'out', out, c.f32('out'), { rtol: 1e-6, atol: 1e-8 });
    native.softmaxBackward(dinp, out, c.f32('dout'), N, C);
    assertClose(t, 'dinp', dinp, c.f32('dinp'), { rtol: 1e-5, atol: 1e-7 });
  },
  logprobs(t, c) {
    const N = num(c, 'N'), V = num(c, 'V');
    const logits = c.f32('logits'), labels = c.i32('labels');
    const out = new Float32Array(N).fill(Number.NaN), lse = new Float32Array(N);
    native.logprobsForward(out, lse, logits, labels, N, V);
    // A float32 sum of V exps: about 1e-7 relative per term, on values up to ~20.
    assertClose(t, 'out', out, c.f32('out'), { rtol: 1e-6, atol: 5e-6 });
    assertClose(t, 'lse', lse, c.f32('lse'), { rtol: 1e-6, atol: 5e-6 });
    const dlogits = new Float32Array(N * V).fill(Number.NaN);
    const dout = c.f32('dout');
    native.logprobsBackward(dlogits, dout, logits, lse, labels, N, V);
    let want: Float32Array;
    if (c.has('dlogits')) {
      want = c.f32('dlogits');
    } else {
      // Wide rows: a float64 JS reference from the fixture's lse.
      const lseRef = c.f32('lse');
      want = new Float32Array(N * V);
      for (let n = 0; n < N; n++) {
        if (labels[n] < 0) continue;
        for (let v = 0; v < V; v++) want[n * V + v] = -dout[n] * Math.exp(logits[n * V + v] - lseRef[n]);
        want[n * V + labels[n]] += dout[n];
      }
    }
    assertClose(t, 'dlogits', dlogits, want, { rtol: 1e-5, atol: 1e-7 });
    const inPlace = logits.slice();
    native.logprobsBackward(inPlace, dout, inPlace, lse, labels, N, V);
    assertClose(t, 'dlogits in place over logits', inPlace, dlogits, EXACT);
  },
  adamw(t, c) {
    const param = c.f32('param0'), grads = c.f32('grads'), n = param.length;
    const m = new Float32Array(n), v = new Float32Array(n);
    const steps = num(c, 'steps');
    for (let s = 0; s < steps; s++) {
      native.adamw(param, grads.subarray(s * n, (s + 1) * n), m, v, num(c, 'lr'), num(c, 'beta1'),
        num(c, 'beta2'), num(c, 'eps'), num(c, 'weightDecay'), s + 1);
    }
    // The brief's bar: 20 steps within 1e-5 relative of torch.optim.AdamW.
    const tol = { rtol: 1e-5, atol: 1e-9 };
    assertClose(t, 'param', param, c.f32('param'), tol);
    assertClose(t, 'exp_avg', m, c.f32('m'), tol);
    assertClose(t, 'exp_avg_sq', v, c.f32('v'), tol);
  },
  convert(t, c) {
    const f32 = c.f32('f32'), n = f32.length;
    const half = new Uint16Array(n), bf = new Uint16Array(n);
    native.f32ToF16(half, f32);
    native.f32ToBf16(bf, f32);
    const wantHalf = c.u16('f16'), wantBf = c.u16('bf16');
    const back = new Float32Array(n), bfBack = new Float32Array(n);
    native.f16ToF32(back, wantHalf);
    native.bf16ToF32(bfBack, wantBf);
    // Bit-exact, except that every NaN is as good as another.
    const bitsMatch = (got: Uint16Array, want: Uint16Array, isNan: (b: number) => boolean) => {
      for (let i = 0; i < n; i++) {
        if (got[i] !== want[i] && !(isNan(got[i]) && isNan(want[i]))) {
          return `element ${i} (${f32[i]}): got 0x${got[i].toString(16)}, expected 0x${want[i].toString(16)}`;
        }
      }
      return null;
    };
    const halfReport = bitsMatch(half, wantHalf, (b) => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0);
    t.equal(halfReport, null, 'f32ToF16 rounds to nearest even as torch');
    const bfReport = bitsMatch(bf, wantBf, (b) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0);
    t.equal(bfReport, null, 'f32ToBf16 rounds to nearest even as torch');
    assertClose(t, 'f16ToF32', back, c.f32('f16_back'), EXACT);
    assertClose(t, 'bf16ToF32', bfBack, c.f32('bf16_back'), EXACT);
  },
};

for (const [op, fn] of Object.entries(binaryOps)) {
  checkers[op] = (t, c) => {
    const a = c.f32('a'), b = c.f32('b'), out = new Float32Array(a.length);
    fn(out, a, b);
    assertClose(t, 'out', out, c.f32('out'), EXACT);
  };
}
for (const [op, u] of Object.entries(unaryOps)) {
  checkers[op] = (t, c) => {
    const a = c.f32('a'), out = new Float32Array(a.length);
    u.fwd(out, a);
    assertClose(t, 'out', out, c.f32('out'), u.tol);
    if (u.bwd) {
      const dinp = new Float32Array(a.length);
      u.bwd(dinp, a, c.f32('dout'));
      assertClose(t, 'dinp', dinp, c.f32('dinp'), UNARY_GRAD_TOL);
    }
  };
}

const cases = loadOpCases();
for (const c of cases) {
  t.test(c.name, async (t) => {
    const check = checkers[c.op];
    if (!check) {
      t.fail(`no checker for fixture op '${c.op}'`);
      return;
    }
    check(t, c);
  });
}

t.test('subarray views: the kernels honour byteOffset', async (t) => {
  const buf = new Float32Array(64);
  for (let i = 0; i < 64; i++) buf[i] = i;
  const out = new Float32Array(40).fill(-1);
  native.add(out.subarray(3, 13), buf.subarray(5, 15), buf.subarray(20, 30));
  const want = Array.from({ length: 10 }, (_, i) => 5 + i + 20 + i);
  assertClose(t, 'add on views', out.subarray(3, 13), want, EXACT);
  t.equal(out[2], -1, 'nothing written before the view');
  t.equal(out[13], -1, 'nothing written after the view');
  const ids = new Int32Array([9, 0, 2, 7]).subarray(1, 3);
  const rows = new Float32Array(8);
  native.gatherRows(rows, buf.subarray(8), ids, 4);
  assertClose(t, 'gatherRows on views', rows, [8, 9, 10, 11, 16, 17, 18, 19], EXACT);
});

t.test('softmax of a fully masked row is zero, not NaN', async (t) => {
  const out = new Float32Array(3);
  native.softmaxForward(out, new Float32Array([-Infinity, -Infinity, -Infinity]), 1, 3);
  assertClose(t, 'out', out, [0, 0, 0], EXACT);
});

t.test('dropout: reproducible, scaled, about p dropped', async (t) => {
  const n = 100_000, p = 0.3;
  const a = new Float32Array(n).fill(2);
  const out1 = new Float32Array(n), mask1 = new Float32Array(n);
  const out2 = new Float32Array(n), mask2 = new Float32Array(n);
  native.dropout(out1, mask1, a, p, 42);
  native.dropout(out2, mask2, a, p, 42);
  assertClose(t, 'same seed, same mask', mask2, mask1, EXACT);
  native.dropout(out2, mask2, a, p, 43);
  let differ = 0, dropped = 0;
  for (let i = 0; i < n; i++) {
    if (mask1[i] !== mask2[i]) differ++;
    if (mask1[i] === 0) dropped++;
    else if (Math.abs(mask1[i] - 1 / (1 - p)) > 1e-6 || out1[i] !== 2 * mask1[i]) {
      t.fail(`element ${i}: mask ${mask1[i]}, out ${out1[i]}`);
      return;
    }
  }
  // Binomial(n, 0.3): the standard deviation of the count is about 145.
  t.ok(Math.abs(dropped - p * n) < 1000, `dropped ${dropped} of ${n}, expected about ${p * n}`);
  t.ok(differ > n * 0.3, `another seed gives another mask (${differ} differ)`);
  native.dropout(out1, mask1, a, 0, 1);
  assertClose(t, 'p = 0 keeps everything', out1, a, EXACT);
});
