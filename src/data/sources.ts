// Reading datasets from disk: a local JSONL or JSON file (DeepSpeed-Chat's
// local format), or a Hugging Face dataset folder of parquet / JSON / JSONL
// files (Dahoas/rm-static, Dahoas/full-hh-rlhf, ... as the Hub stores them,
// e.g. data/train-00000-of-00001.parquet and data/test-....parquet). Each row
// keeps its file and line so that a bad one can be named.
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { BadRowError, toRow, type BadRows, type RawRow, type RowOrigin } from './rows.js';

export type SplitName = 'train' | 'test';

export interface SourceFile {
  path: string;
  split: SplitName;
}

const dataExtensions = new Set(['.jsonl', '.json', '.parquet']);
/** Metadata that `datasets` writes next to the data in a folder; never rows. */
const metadataFiles = new Set(['dataset_info.json', 'dataset_infos.json', 'dataset_dict.json', 'state.json']);

/** The split a file of a dataset folder belongs to, from its name (the Hub's convention). */
function splitOfFile(rel: string): SplitName | null {
  const name = rel.toLowerCase();
  if (/(^|[/_.-])(test|eval|validation|valid)([/_.-]|$)/.test(name)) return 'test';
  if (/(^|[/_.-])train([/_.-]|$)/.test(name)) return 'train';
  return null;
}

/**
 * The data files of a dataset path. A file is the train split by itself; a
 * folder contributes its .parquet/.json/.jsonl files (recursively), assigned
 * to train or test by name; files named for neither are train.
 */
export function listDatasetFiles(path: string): SourceFile[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new Error(`dataset '${path}' does not exist`);
  }
  if (st.isFile()) {
    if (!dataExtensions.has(extname(path).toLowerCase())) throw new Error(`dataset '${path}': expected a .jsonl, .json or .parquet file`);
    return [{ path, split: 'train' }];
  }
  const out: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.') || metadataFiles.has(name)) continue;
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (dataExtensions.has(extname(name).toLowerCase())) {
        out.push({ path: full, split: splitOfFile(relative(path, full)) ?? 'train' });
      }
    }
  };
  walk(path);
  if (out.length === 0) throw new Error(`dataset folder '${path}' holds no .parquet, .json or .jsonl files`);
  return out;
}

/** Rows of a JSON Lines file; blank lines are ignored. */
function parseJsonLines(file: string, text: string, bad: BadRows): RawRow[] {
  const rows: RawRow[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const origin = { file, line: i + 1, unit: 'line' as const };
    pushRow(rows, line, origin, bad);
  }
  return rows;
}

/**
 * The top-level elements of a JSON array as source text with their starting
 * line, found by tracking strings and nesting only, so each element can be
 * parsed (and blamed) on its own.
 */
export function jsonArrayElements(text: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let i = text.indexOf('[');
  let line = 1 + (text.slice(0, i).match(/\n/g)?.length ?? 0);
  let depth = 0, inString = false, start = -1, startLine = 0;
  for (i = i + 1; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') line++;
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (start < 0 && !/[\s,\]]/.test(ch)) { start = i; startLine = line; }
    if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      if (depth === 0) { // the closing bracket of the array
        if (start >= 0) out.push({ text: text.slice(start, i), line: startLine });
        return out;
      }
      depth--;
    } else if (ch === ',' && depth === 0) {
      if (start >= 0) out.push({ text: text.slice(start, i), line: startLine });
      start = -1;
    }
  }
  if (start >= 0) out.push({ text: text.slice(start), line: startLine });
  return out;
}

/** Rows of a JSON file: an array of objects, or else JSON Lines (as Hugging Face's json loader accepts). */
function parseJson(file: string, text: string, bad: BadRows): RawRow[] {
  if (!text.trimStart().startsWith('[')) return parseJsonLines(file, text, bad);
  const rows: RawRow[] = [];
  for (const el of jsonArrayElements(text)) {
    const origin = { file, line: el.line, unit: 'line' as const };
    pushRow(rows, el.text, origin, bad);
  }
  return rows;
}

async function parseParquet(file: string, bytes: Buffer, bad: BadRows): Promise<RawRow[]> {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let columns: string[];
  try {
    const schema = parquetSchema(parquetMetadata(buffer));
    columns = schema.children.map((c) => c.element.name);
  } catch (err) {
    throw new Error(`${file}: not a readable parquet file (${(err as Error).message})`);
  }
  for (const need of ['prompt', 'chosen']) {
    if (!columns.includes(need)) throw new Error(`${file}: parquet file has no '${need}' column (columns: ${columns.join(', ')})`);
  }
  const wanted = ['prompt', 'chosen', 'rejected'].filter((c) => columns.includes(c));
  let records: Record<string, unknown>[];
  try {
    records = await parquetReadObjects({ file: buffer, columns: wanted });
  } catch (err) {
    throw new Error(`${file}: cannot read parquet data (${(err as Error).message})`);
  }
  const rows: RawRow[] = [];
  records.forEach((rec, i) => {
    try {
      rows.push(toRow(rec, { file, line: i + 1, unit: 'row' }));
    } catch (err) {
      if (err instanceof BadRowError) bad.report(err);
      else throw err;
    }
  });
  return rows;
}

/** Parses the rows of one data file from its bytes. */
export async function parseDataFile(file: string, bytes: Buffer, bad: BadRows): Promise<RawRow[]> {
  switch (extname(file).toLowerCase()) {
    case '.parquet': return parseParquet(file, bytes, bad);
    case '.jsonl': return parseJsonLines(file, bytes.toString('utf8'), bad);
    case '.json': return parseJson(file, bytes.toString('utf8'), bad);
    default: throw new Error(`${basename(file)}: unsupported data file type`);
  }
}

/** Parses one JSON row; a bad one is reported with its origin and skipped (or thrown, as `bad` says). */
function pushRow(rows: RawRow[], text: string, origin: RowOrigin, bad: BadRows): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    bad.report(new BadRowError(origin, `not valid JSON (${(err as Error).message})`));
    return;
  }
  try {
    rows.push(toRow(value, origin));
  } catch (err) {
    if (err instanceof BadRowError) bad.report(err);
    else throw err;
  }
}
