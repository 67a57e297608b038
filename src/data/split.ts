// The seeded permutations and the step split of DeepSpeed-Chat
// (dschat/utils/data/data_utils.py: get_shuffle_idx, get_raw_dataset_split_index),
// reproduced exactly: the same seed gives the same rows to each step as
// DeepSpeed-Chat would, so splits can be compared across the two systems.
// numpy's legacy RandomState is MT19937 seeded with init_genrand, and its
// shuffle is Fisher-Yates drawing j in [0, i] by masked rejection sampling.

const N = 624;
const M = 397;

/** numpy.random.RandomState(seed) restricted to what shuffle needs. */
export class Mt19937 {
  private readonly mt = new Uint32Array(N);
  private index = N;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`Mt19937: seed must be an integer in 0..2^32-1, got ${seed}`);
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      // 1812433253 * prev + i in 32-bit arithmetic, split to stay exact in doubles
      this.mt[i] = (((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < N; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % N] & 0x7fffffff);
      mt[i] = mt[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform integer in [0, max], as numpy's random_interval (max < 2^32). */
  interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do v = (this.nextUint32() & mask) >>> 0; while (v > max);
    return v;
  }
}

/** numpy: RandomState(seed).shuffle(arange(size)). */
export function shuffleIndex(seed: number, size: number): Uint32Array {
  if (size >= 0xffffffff) throw new Error(`shuffleIndex: ${size} rows is beyond 32-bit indices`);
  const idx = new Uint32Array(size);
  for (let i = 0; i < size; i++) idx[i] = i;
  const rng = new Mt19937(seed);
  for (let i = size - 1; i > 0; i--) {
    const j = rng.interval(i);
    const tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
  }
  return idx;
}

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Parses a split such as '2,4,4' into its shares. */
export function parseSplit(split: string): number[] {
  const shares = split.split(',').map((s) => Number(s.trim()));
  if (shares.length === 0 || shares.some((s) => !Number.isFinite(s) || s < 0) || !(shares.reduce((a, b) => a + b, 0) > 0)) {
    throw new Error(`data.split: expected comma-separated non-negative shares such as '2,4,4', got '${split}'`);
  }
  return shares;
}

/** Boundaries of the pieces of `size` rows, as DeepSpeed-Chat computes them (its rounding included). */
export function splitBounds(shares: number[], size: number): number[] {
  const sum = shares.reduce((a, b) => a + b, 0);
  const bounds = [0];
  for (const s of shares) bounds.push(bounds[bounds.length - 1] + roundHalfEven((s / sum) * size));
  const diff = bounds[bounds.length - 1] - size;
  for (let i = 1; i < bounds.length; i++) bounds[i] -= diff;
  return bounds;
}

/** The rows of piece `part` of a dataset of `size` rows split by `shares` with `seed`. */
export function splitIndex(seed: number, shares: number[], part: number, size: number): number[] {
  if (part < 0 || part >= shares.length) throw new Error(`splitIndex: part ${part} of a ${shares.length}-way split`);
  const bounds = splitBounds(shares, size);
  return Array.from(shuffleIndex(seed, size).subarray(Math.max(0, bounds[part]), Math.max(0, bounds[part + 1])));
}
