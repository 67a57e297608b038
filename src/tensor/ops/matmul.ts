// Matrix products: matmul (batched, or a 2-D right operand shared by every
// batch) and linear in torch's nn.Linear layout. Backward products:
// dA = dC B^T, dB = A^T dC; linear's bias gradient is a column sum.
import { native } from '../../native.js';
import { defineRule, record } from '../tape/autograd.js';
import { empty, fmtShape, sameShape, shapeSize, type Tensor } from '../tensor.js';
import { f32, fail, rank } from './check.js';

interface MatmulAttrs {
  M: number;
  K: number;
  N: number;
  /** Batch count, and whether a / b step through it (false: one matrix shared). */
  batch: number;
  batchA: boolean;
  batchB: boolean;
}

/** a [.., M, K] @ b [.., K, N] -> [.., M, N]. The batch dims must match, or one side is 2-D. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const ad = f32('matmul', 'a', a);
  const bd = f32('matmul', 'b', b);
  rank('matmul', 'a', a, 2, Infinity);
  rank('matmul', 'b', b, 2, Infinity);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  const ab = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  if (K !== K2) fail('matmul', `inner dims differ: a ${fmtShape(a.shape)} @ b ${fmtShape(b.shape)}`);
  if (ab.length > 0 && bb.length > 0 && !sameShape(ab, bb)) {
    fail('matmul', `batch dims differ: a ${fmtShape(a.shape)} @ b ${fmtShape(b.shape)}`);
  }
  const batchDims = ab.length > 0 ? ab : bb;
  const batch = shapeSize(batchDims);
  const attrs: MatmulAttrs = { M, K, N, batch, batchA: ab.length > 0, batchB: bb.length > 0 };
  const out = empty([...batchDims, M, N]);
  if (!attrs.batchB) {
    // A shared right operand: fold a's batch into its rows, one product.
    native.gemm(false, false, batch * M, N, K, 1, ad, K, bd, N, 0, out.f32, N);
  } else {
    native.gemmBatched(false, false, M, N, K, 1, ad, K, attrs.batchA ? M * K : 0, bd, N, K * N, 0,
      out.f32, N, M * N, batch);
  }
  record('matmul', out, [a, b], [a, b], [], attrs);
  return out;
}
defineRule<MatmulAttrs>('matmul', (n, [g]) => {
  const [a, b] = n.saved;
  const { M, K, N, batch, batchA, batchB } = n.attrs;
  const gd = g!.f32;
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (n.needs[0]) {
    da = empty(a.shape);
    if (!batchB) {
      native.gemm(false, true, batch * M, K, N, 1, gd, N, b.f32, N, 0, da.f32, K);
    } else if (batchA) {
      native.gemmBatched(false, true, M, K, N, 1, gd, N, M * N, b.f32, N, K * N, 0, da.f32, K, M * K, batch);
    } else {
      // a was shared: sum its per-batch gradients.
      const per = empty([batch, M, K]);
      native.gemmBatched(false, true, M, K, N, 1, gd, N, M * N, b.f32, N, K * N, 0, per.f32, K, M * K, batch);
      native.sumRows(da.f32, per.f32, batch, M * K);
      per.dispose();
    }
  }
  if (n.needs[1]) {
    db = empty(b.shape);
    if (!batchB) {
      native.gemm(true, false, K, N, batch * M, 1, a.f32, K, gd, N, 0, db.f32, N);
    } else {
      native.gemmBatched(true, false, K, N, M, 1, a.f32, K, batchA ? M * K : 0, gd, N, M * N, 0, db.f32, N, K * N, batch);
    }
  }
  return [da, db];
});

interface LinearAttrs {
  rows: number;
  inF: number;
  outF: number;
}

/** x [.., in] @ weight [out, in]^T + bias [out] -> [.., out] (torch nn.Linear). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const xd = f32('linear', 'x', x);
  const wd = f32('linear', 'weight', weight);
  rank('linear', 'x', x, 1, Infinity);
  rank('linear', 'weight', weight, 2);
  const [outF, inF] = weight.shape;
  if (x.shape[x.shape.length - 1] !== inF) {
    fail('linear', `x ${fmtShape(x.shape)} does not match weight ${fmtShape(weight.shape)} ([out, in])`);
  }
  const rows = x.size / Math.max(inF, 1);
  const out = empty([...x.shape.slice(0, -1), outF]);
  native.gemm(false, true, rows, outF, inF, 1, xd, inF, wd, inF, 0, out.f32, outF);
  if (bias != null) {
    const bd = f32('linear', 'bias', bias);
    if (bias.shape.length !== 1 || bias.shape[0] !== outF) {
      fail('linear', `bias ${fmtShape(bias.shape)} does not match weight ${fmtShape(weight.shape)}`);
    }
    native.addRow(out.f32, out.f32, bd, rows, outF);
  }
  record<LinearAttrs>('linear', out, [x, weight, bias ?? null], [x, weight], [], { rows, inF, outF });
  return out;
}
defineRule<LinearAttrs>('linear', (n, [g]) => {
  const [x, w] = n.saved;
  const { rows, inF, outF } = n.attrs;
  const gd = g!.f32;
  let dx: Tensor | null = null;
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (n.needs[0]) {
    dx = empty(x.shape);
    native.gemm(false, false, rows, inF, outF, 1, gd, outF, w.f32, inF, 0, dx.f32, inF);
  }
  if (n.needs[1]) {
    dw = empty(w.shape);
    native.gemm(true, false, outF, inF, rows, 1, gd, outF, x.f32, inF, 0, dw.f32, inF);
  }
  if (n.needs[2]) {
    db = empty([outF]);
    native.sumRows(db.f32, gd, rows, outF);
  }
  return [dx, dw, db];
});
