// The tokenised-data cache: one file per data file, named by a hash of
// everything its tokens depend on (the data file's bytes, the tokenizer
// files' bytes, the formatting settings and this format's version), so an
// edited file or a different tokenizer is simply a different entry and is
// tokenised again. Entries are written to a temporary name and renamed, so a
// killed run never leaves half an entry behind.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenTable } from './token-table.js';

const MAGIC = 'QDC1';
/** Bump when tokenising or formatting changes meaning, so old entries stop matching. */
export const CACHE_FORMAT = 1;

export interface CacheEntry {
  table: TokenTable;
  /** Source line (or parquet row) of each tokenised row. */
  lines: Int32Array;
  /** Messages of the bad rows that were skipped, so a cache hit reports them again. */
  skipped: string[];
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The key of an entry: a hash of its inputs. */
export function cacheKey(inputs: Record<string, unknown>): string {
  return sha256(JSON.stringify({ format: CACHE_FORMAT, ...inputs }));
}

interface Header { n: number; idsLength: number; skipped: string[] }

export function writeCacheEntry(dir: string, key: string, e: CacheEntry): string {
  mkdirSync(dir, { recursive: true });
  const header = Buffer.from(JSON.stringify({ n: e.table.n, idsLength: e.table.ids.length, skipped: e.skipped } satisfies Header));
  const pad = (4 - ((8 + header.length) % 4)) % 4;
  const head = Buffer.alloc(8 + header.length + pad, 0x20);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(header.length + pad, 4);
  header.copy(head, 8);
  const bytes = (a: Int32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const flags = new Int32Array(e.table.hasRejected);
  const body = [head, bytes(e.table.offsets), bytes(e.lines), bytes(flags), bytes(e.table.ids)];
  const path = join(dir, `${key}.bin`);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.concat(body));
  renameSync(tmp, path);
  return path;
}

/** The entry for `key`, or null when there is none or it is unreadable (then it is rebuilt). */
export function readCacheEntry(dir: string, key: string): CacheEntry | null {
  const path = join(dir, `${key}.bin`);
  if (!existsSync(path)) return null;
  const buf = readFileSync(path);
  if (buf.length < 8 || buf.toString('ascii', 0, 4) !== MAGIC) return null;
  const headerLen = buf.readUInt32LE(4);
  let h: Header;
  try {
    h = JSON.parse(buf.toString('utf8', 8, 8 + headerLen)) as Header;
  } catch {
    return null;
  }
  const ints = 3 * h.n + 1 + h.n + h.n + h.idsLength;
  const start = 8 + headerLen;
  if (buf.length !== start + 4 * ints) return null;
  // copy into an aligned buffer: a Buffer's byteOffset need not be a multiple of 4
  const all = new Int32Array(ints);
  new Uint8Array(all.buffer).set(buf.subarray(start));
  let at = 0;
  const take = (len: number) => all.subarray(at, (at += len));
  const offsets = take(3 * h.n + 1);
  const lines = take(h.n);
  const hasRejected = Uint8Array.from(take(h.n));
  const ids = take(h.idsLength);
  return { table: { n: h.n, offsets, hasRejected, ids }, lines, skipped: h.skipped };
}
