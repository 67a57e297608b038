// A small seeded generator for the demo's data splits and samples. Splits must
// be identical on every machine and Node version, so Math.random is not used.

export { mulberry32 } from '../util/mulberry32.js';

/** Fisher-Yates shuffle of a copy of `items`. */
export function shuffled<T>(items: readonly T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const tmp = out[i];
    out[i] = out[j];
    out[j] = tmp;
  }
  return out;
}
