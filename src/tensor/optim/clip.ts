// Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_: the L2
// norm over every gradient together; when above maxNorm, every gradient is
// scaled by maxNorm / (norm + 1e-6). Returns the norm before clipping (it may
// be NaN or Infinity: the caller decides whether to skip the step, or passes
// errorIfNonfinite to make that an error, as torch's flag of that name).
import { native } from '../../native.js';
import { fmtShape, type Tensor } from '../tensor.js';

export function gradNorm(params: Iterable<Tensor>): number {
  let sq = 0;
  for (const p of params) if (p.grad !== null) sq += native.sumSquares(p.grad.f32);
  return Math.sqrt(sq);
}

export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number, opts?: { errorIfNonfinite?: boolean }): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const list = [...params];
  const norm = gradNorm(list);
  if (opts?.errorIfNonfinite && !Number.isFinite(norm)) {
    const bad = list.filter((p) => p.grad !== null && !native.allFinite(p.grad.f32)).map((p) => fmtShape(p.shape));
    throw new Error(`clipGradNorm: the total gradient norm is ${norm}; non-finite gradients in parameters ${bad.join(', ')}`);
  }
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const p of list) if (p.grad !== null) native.affine(p.grad.f32, p.grad.f32, coef, 0);
  }
  return norm;
}
