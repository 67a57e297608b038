// A tiny seeded generator, identical on every machine and Node version (Math.random
// is not seedable): the demo's data splits and the kernel tests' random inputs.

/** mulberry32: 32-bit state, period 2^32, good enough for shuffling data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
