// Where a request's tensors enter a role: each named tensor checked by dtype
// and shape and wrapped without copying, sequences checked row by row, and
// the batches of docs/roles.md assembled for the engines. This is the one
// check of a batch on its way to the kernels; the engines trust what they get.
import type { Request } from '../src/runtime/role-server.js';
import type { Tensors } from '../src/runtime/wire.js';
import type { Seqs } from '../src/training/batch.js';
import type { DpoBatch, PpoBatch } from '../src/training/policy.js';
import type { ValueBatch } from '../src/training/value.js';

/** The named tensor as an f32 or i32 array of the given shape (-1: any size). */
export function take(op: string, tensors: Tensors, name: string, dtype: 'f32' | 'i32', shape: number[]): Float32Array | Int32Array {
  const t = tensors[name];
  if (!t) throw new Error(`${op}: tensor '${name}' is missing (got ${Object.keys(tensors).join(', ') || 'none'})`);
  const ok = t.dtype === dtype && t.shape.length === shape.length && shape.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) throw new Error(`${op}: tensor '${name}' must be ${dtype} [${shape.map((d) => (d < 0 ? '?' : d))}], got ${t.dtype} [${t.shape}]`);
  const want = dtype === 'f32' ? Float32Array : Int32Array;
  if (!(t.data instanceof want)) throw new Error(`${op}: tensor '${name}' holds a ${t.data.constructor.name}, not a ${want.name}`);
  return t.data;
}

/** Sequences from `ids`/`mask`-style tensor names: a 0/1 mask with a real token in every row. */
export function takeSeqs(op: string, tensors: Tensors, idsName = 'ids', maskName = 'mask', minT = 1): Seqs {
  const ids = take(op, tensors, idsName, 'i32', [-1, -1]) as Int32Array;
  const [B, T] = tensors[idsName].shape;
  const mask = take(op, tensors, maskName, 'i32', [B, T]) as Int32Array;
  if (B < 1) throw new Error(`${op}: '${idsName}' has no rows`);
  if (T < minT) throw new Error(`${op}: '${idsName}' has ${T} columns, needs at least ${minT}`);
  for (let b = 0; b < B; b++) {
    let real = 0;
    for (let t = 0; t < T; t++) {
      const m = mask[b * T + t];
      if (m !== 0 && m !== 1) throw new Error(`${op}: '${maskName}'[${b}, ${t}] is ${m}; a mask holds 0 or 1`);
      real += m;
    }
    if (real === 0) throw new Error(`${op}: row ${b} of '${maskName}' has no real token`);
  }
  return { ids, mask, B, T };
}

/** `ids`/`mask` of at least two columns: the input of every per-token method (log-probs, values, training). */
export function takeTokens(op: string, req: Request): Seqs {
  return takeSeqs(op, req.tensors, 'ids', 'mask', 2);
}

/** A per-token f32 tensor [B, T-1] aligned with `s`. */
function perToken(op: string, req: Request, s: Seqs, name: string): Float32Array {
  return take(op, req.tensors, name, 'f32', [s.B, s.T - 1]) as Float32Array;
}

/** train_ppo: the sequences with old log-probs, advantages and action mask. */
export function ppoBatch(op: string, req: Request): PpoBatch {
  const s = takeTokens(op, req);
  return { ...s, oldLogprobs: perToken(op, req, s, 'old_logprobs'), advantages: perToken(op, req, s, 'advantages'), actionMask: perToken(op, req, s, 'action_mask') };
}

/** train_ppo's optional ptx batch. */
export function ptxBatch(op: string, req: Request): Seqs | null {
  return req.tensors.ptx_ids ? takeSeqs(op, req.tensors, 'ptx_ids', 'ptx_mask', 2) : null;
}

/** train_value: the sequences with old values, returns and action mask. */
export function valueBatch(op: string, req: Request): ValueBatch {
  const s = takeTokens(op, req);
  return { ...s, oldValues: perToken(op, req, s, 'old_values'), returns: perToken(op, req, s, 'returns'), actionMask: perToken(op, req, s, 'action_mask') };
}

/** train_sft / eval_sft: the sequences and their loss mask f32 [B, T]. */
export function sftBatch(op: string, req: Request): { seqs: Seqs; lossMask: Float32Array } {
  const seqs = takeTokens(op, req);
  return { seqs, lossMask: take(op, req.tensors, 'loss_mask', 'f32', [seqs.B, seqs.T]) as Float32Array };
}

/** Chosen and rejected sequences of one width (train_rm, eval_rm, and the DPO pairs). */
export function pairs(op: string, req: Request, minT = 1): [Seqs, Seqs] {
  const chosen = takeSeqs(op, req.tensors, 'chosen_ids', 'chosen_mask', minT);
  const rejected = takeSeqs(op, req.tensors, 'rejected_ids', 'rejected_mask', minT);
  if (rejected.B !== chosen.B || rejected.T !== chosen.T) throw new Error(`${op}: chosen is [${chosen.B}, ${chosen.T}] but rejected is [${rejected.B}, ${rejected.T}]; pad both to one width`);
  return [chosen, rejected];
}

/** The pair tensors of train_dpo / eval_dpo (docs/roles.md); every row's answer mask selects a token. */
export function dpoBatch(op: string, req: Request): DpoBatch {
  const [chosen, rejected] = pairs(op, req, 2);
  const { B, T } = chosen;
  const f = (name: string, shape: number[]) => take(op, req.tensors, name, 'f32', shape) as Float32Array;
  const x: DpoBatch = {
    chosen, rejected,
    chosenAnswer: f('chosen_answer_mask', [B, T - 1]), rejectedAnswer: f('rejected_answer_mask', [B, T - 1]),
    refChosen: f('ref_chosen_logps', [B]), refRejected: f('ref_rejected_logps', [B]),
  };
  const A = T - 1;
  for (const [name, m] of [['chosen_answer_mask', x.chosenAnswer], ['rejected_answer_mask', x.rejectedAnswer]] as const) {
    for (let b = 0; b < B; b++) {
      if (!m.subarray(b * A, (b + 1) * A).some((v) => v !== 0)) throw new Error(`${op}: ${name} row ${b} selects no answer token`);
    }
  }
  return x;
}
