// Padded batches for the trainers, and the seeded batch iterator whose
// position can be saved and restored (for --resume).
//
// Layouts, row-major [B, T]: ids (pads hold padId), mask (1 real, 0 pad).
// Training batches pad on the right; generation batches pad on the left so
// every prompt ends at the same column and answers start together.
import { sequence, type PpoPrompts, type RmPairs, type Sequences, type SftExamples } from './examples.js';
import { shuffleIndex } from './split.js';

export interface Padded {
  B: number;
  T: number;
  ids: Int32Array;
  mask: Int32Array;
  /** Real tokens per row. */
  lengths: Int32Array;
}

export function padRows(rows: readonly Int32Array[], padId: number, side: 'left' | 'right'): Padded {
  const B = rows.length;
  const T = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(B * T).fill(padId);
  const mask = new Int32Array(B * T);
  rows.forEach((r, b) => {
    const start = b * T + (side === 'left' ? T - r.length : 0);
    ids.set(r, start);
    mask.fill(1, start, start + r.length);
  });
  return { B, T, ids, mask, lengths: Int32Array.from(rows, (r) => r.length) };
}

function pick(s: Sequences, indices: readonly number[]): Int32Array[] {
  return indices.map((i) => {
    if (!(i >= 0 && i < s.n)) throw new Error(`batch: example ${i} of ${s.n}`);
    return sequence(s, i);
  });
}

export interface SftBatch extends Padded {
  /** [B, T]: 1 where the token is a target of the next-token loss (it is predicted from the tokens before it). */
  lossMask: Int32Array;
  promptLens: Int32Array;
}

/**
 * Right-padded SFT batch. Targets are every real token after the first
 * (DeepSpeed-Chat trains on the prompt too), or, with maskPrompt, the answer
 * tokens only.
 */
export function sftBatch(ex: SftExamples, indices: readonly number[], padId: number, maskPrompt: boolean): SftBatch {
  const p = padRows(pick(ex.seqs, indices), padId, 'right');
  const promptLens = Int32Array.from(indices, (i) => ex.promptLens[i]);
  const lossMask = new Int32Array(p.B * p.T);
  for (let b = 0; b < p.B; b++) {
    const from = maskPrompt ? Math.max(1, promptLens[b]) : 1;
    lossMask.fill(1, b * p.T + from, b * p.T + p.lengths[b]);
  }
  return { ...p, lossMask, promptLens };
}

export interface RmBatch extends Padded {
  /** Rows 0..pairs-1 are the chosen sequences, rows pairs..2*pairs-1 the rejected ones (DeepSpeed-Chat's layout). */
  pairs: number;
  promptLens: Int32Array;
}

/** Chosen and rejected sequences right-padded to one width, chosen rows first. */
export function rmBatch(ex: RmPairs, indices: readonly number[], padId: number): RmBatch {
  const p = padRows([...pick(ex.chosen, indices), ...pick(ex.rejected, indices)], padId, 'right');
  return { ...p, pairs: indices.length, promptLens: Int32Array.from(indices, (i) => ex.promptLens[i]) };
}

/** Left-padded prompts for generation. */
export function ppoBatch(ex: PpoPrompts, indices: readonly number[], padId: number): Padded {
  return padRows(pick(ex.prompts, indices), padId, 'left');
}

export interface IteratorState {
  epoch: number;
  /** Batches already taken in this epoch. */
  batch: number;
}

/** Batches per epoch of n examples in batches of batchSize, as BatchIterator cuts them. */
export function batchesPerEpoch(n: number, batchSize: number, opts: { dropLast?: boolean; minLast?: number } = {}): number {
  const full = Math.floor(n / batchSize), rest = n % batchSize;
  if (opts.dropLast || rest === 0) return full;
  return full > 0 && rest < (opts.minLast ?? 1) ? full : full + 1;
}

/**
 * Seeded shuffling batches over n examples: each epoch is a fresh
 * permutation (seed + epoch), cut into batches of batchSize (the last one may
 * be short unless dropLast; one shorter than minLast joins the batch before,
 * so that every replica of a training group gets a row). state() / restore()
 * save and resume the position.
 */
export class BatchIterator {
  private order: Uint32Array;
  private pos: IteratorState = { epoch: 0, batch: 0 };

  constructor(readonly n: number, readonly batchSize: number, readonly seed: number,
    readonly opts: { epochs?: number; dropLast?: boolean; shuffle?: boolean; minLast?: number } = {}) {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`BatchIterator: batchSize must be a positive integer, got ${batchSize}`);
    this.order = this.orderOf(0);
  }

  private orderOf(epoch: number): Uint32Array {
    if (this.opts.shuffle === false) return Uint32Array.from({ length: this.n }, (_, i) => i);
    return shuffleIndex((this.seed + epoch) >>> 0, this.n);
  }

  /** Batches per epoch. */
  get batchesPerEpoch(): number {
    return batchesPerEpoch(this.n, this.batchSize, this.opts);
  }

  /** The next batch's example indices, or null after the last epoch (epochs default to 1). */
  next(): number[] | null {
    const epochs = this.opts.epochs ?? 1;
    if (this.batchesPerEpoch === 0) return null;
    if (this.pos.batch >= this.batchesPerEpoch) {
      this.pos = { epoch: this.pos.epoch + 1, batch: 0 };
      this.order = this.orderOf(this.pos.epoch);
    }
    if (this.pos.epoch >= epochs) return null;
    const start = this.pos.batch * this.batchSize;
    this.pos.batch++;
    // Without dropLast the epoch's last batch takes every example left (a short tail merged by minLast included).
    const end = !this.opts.dropLast && this.pos.batch === this.batchesPerEpoch ? this.n : start + this.batchSize;
    return Array.from(this.order.subarray(start, end));
  }

  state(): IteratorState {
    return { ...this.pos };
  }

  restore(s: IteratorState): void {
    if (!Number.isInteger(s.epoch) || !Number.isInteger(s.batch) || s.epoch < 0 || s.batch < 0 || s.batch > this.batchesPerEpoch) {
      throw new Error(`BatchIterator.restore: bad position ${JSON.stringify(s)} for ${this.batchesPerEpoch} batches per epoch`);
    }
    this.pos = { ...s };
    this.order = this.orderOf(s.epoch);
  }
}
