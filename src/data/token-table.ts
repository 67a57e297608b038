// Tokenised rows, stored flat so they move between threads and to disk
// without re-encoding: for row i, its prompt, chosen and rejected ids are
// ids[offsets[3i] .. offsets[3i+1]], [.. offsets[3i+2]], [.. offsets[3i+3]].
// Prompt ids carry the tokenizer's special prefix (e.g. OPT's </s>); answer
// ids carry none. Nothing is truncated here: lengths are applied when the
// examples of a step are assembled, so the cache does not depend on them.
import type { QTokenizer } from '../models/tokenizer.js';
import type { FormattedRow } from './format.js';

export interface TokenTable {
  n: number;
  /** 3n+1 offsets into ids. */
  offsets: Int32Array;
  /** 1 when the row has a rejected answer. */
  hasRejected: Uint8Array;
  ids: Int32Array;
}

export function promptIds(t: TokenTable, i: number): Int32Array {
  return t.ids.subarray(t.offsets[3 * i], t.offsets[3 * i + 1]);
}
export function chosenIds(t: TokenTable, i: number): Int32Array {
  return t.ids.subarray(t.offsets[3 * i + 1], t.offsets[3 * i + 2]);
}
export function rejectedIds(t: TokenTable, i: number): Int32Array | null {
  return t.hasRejected[i] ? t.ids.subarray(t.offsets[3 * i + 2], t.offsets[3 * i + 3]) : null;
}

/** Tokenises formatted rows; the pool's workers and the main thread share this. */
export function tokenizeRows(tok: QTokenizer, rows: readonly FormattedRow[]): TokenTable {
  const prefix = tok.encode('', { addSpecialTokens: true });
  const parts: number[][] = [];
  const hasRejected = new Uint8Array(rows.length);
  for (const [i, r] of rows.entries()) {
    parts.push([...prefix, ...tok.encode(r.prompt, { addSpecialTokens: false })]);
    parts.push(tok.encode(r.chosen, { addSpecialTokens: false }));
    parts.push(r.rejected === null ? [] : tok.encode(r.rejected, { addSpecialTokens: false }));
    hasRejected[i] = r.rejected === null ? 0 : 1;
  }
  const offsets = new Int32Array(parts.length + 1);
  for (let k = 0; k < parts.length; k++) offsets[k + 1] = offsets[k] + parts[k].length;
  const ids = new Int32Array(offsets[parts.length]);
  parts.forEach((p, k) => ids.set(p, offsets[k]));
  return { n: rows.length, offsets, hasRejected, ids };
}

/** Joins tables in order. */
export function concatTables(tables: readonly TokenTable[]): TokenTable {
  const n = tables.reduce((a, t) => a + t.n, 0);
  const total = tables.reduce((a, t) => a + t.ids.length, 0);
  const offsets = new Int32Array(3 * n + 1);
  const hasRejected = new Uint8Array(n);
  const ids = new Int32Array(total);
  let row = 0, base = 0;
  for (const t of tables) {
    for (let k = 1; k <= 3 * t.n; k++) offsets[3 * row + k] = base + t.offsets[k];
    hasRejected.set(t.hasRejected, row);
    ids.set(t.ids, base);
    row += t.n;
    base += t.ids.length;
  }
  return { n, offsets, hasRejected, ids };
}

/** The rows `index` of a table, in that order. */
export function selectRows(t: TokenTable, index: readonly number[]): TokenTable {
  const parts: TokenTable[] = index.map((i) => {
    if (i < 0 || i >= t.n) throw new Error(`selectRows: row ${i} of a table of ${t.n}`);
    const lo = t.offsets[3 * i], hi = t.offsets[3 * i + 3];
    const offsets = Int32Array.from([0, t.offsets[3 * i + 1] - lo, t.offsets[3 * i + 2] - lo, hi - lo]);
    return { n: 1, offsets, hasRejected: t.hasRejected.subarray(i, i + 1), ids: t.ids.subarray(lo, hi) };
  });
  return concatTables(parts);
}
