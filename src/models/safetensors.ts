// The safetensors format (Hugging Face): an 8-byte little-endian header length
// N, a JSON header of N bytes ({ name: { dtype, shape, data_offsets } } plus an
// optional "__metadata__" map of strings), then the raw little-endian data.
// Offsets are relative to the start of the data. Sharded checkpoints keep a
// `model.safetensors.index.json` whose `weight_map` names the file of each tensor.
//
// Reading goes tensor by tensor straight from the file into the destination
// array (no copy of the whole file is ever held), so a checkpoint's peak memory
// is its float32 parameters plus one tensor. F16 and BF16 convert through the
// native kernels.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { native } from '../native.js';
import { diskError, onDisk } from '../util/disk.js';

export type StDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
/** The dtypes a checkpoint can be written in (all read back as float32). */
export type SaveDtype = 'F32' | 'F16' | 'BF16';

const BYTES: Record<StDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const FLOAT_DTYPES = new Set<StDtype>(['F32', 'F16', 'BF16']);
// A header larger than this is not a safetensors file (the reference library uses the same bound).
const MAX_HEADER = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: StDtype;
  shape: number[];
  /** Byte offsets into the data section, [begin, end). */
  begin: number;
  end: number;
}

/** A named float32 tensor as stored in or written to a checkpoint. */
export interface NamedArray {
  name: string;
  shape: number[];
  data: Float32Array;
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** One open .safetensors file: the header is parsed and checked on open; tensors are read on demand. */
export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  private readonly entries = new Map<string, TensorEntry>();
  private readonly dataStart: number;
  private fd: number | null;

  private constructor(path: string) {
    this.path = path;
    this.fd = openSync(path, 'r');
    try {
      const size = fstatSync(this.fd).size;
      if (size < 8) throw new Error(`safetensors: ${path} is truncated (${size} bytes, no header length)`);
      const head = Buffer.alloc(8);
      readSync(this.fd, head, 0, 8, 0);
      const n = Number(head.readBigUInt64LE(0));
      if (n > MAX_HEADER) throw new Error(`safetensors: ${path} is corrupt (header length ${n} bytes)`);
      if (8 + n > size) throw new Error(`safetensors: ${path} is truncated (header of ${n} bytes, file of ${size})`);
      const json = Buffer.alloc(n);
      readSync(this.fd, json, 0, n, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
      } catch (err) {
        throw new Error(`safetensors: ${path} has a corrupt JSON header: ${(err as Error).message}`);
      }
      if (header === null || typeof header !== 'object' || Array.isArray(header)) {
        throw new Error(`safetensors: ${path} has a header that is not a JSON object`);
      }
      this.dataStart = 8 + n;
      const dataSize = size - this.dataStart;
      this.metadata = {};
      for (const [name, v] of Object.entries(header)) {
        if (name === '__metadata__') {
          if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
            throw new Error(`safetensors: ${path}: __metadata__ must map strings to strings, got ${JSON.stringify(v).slice(0, 200)}`);
          }
          Object.assign(this.metadata, v as Record<string, string>);
          continue;
        }
        this.entries.set(name, checkEntry(path, name, v, dataSize));
      }
      checkLayout(path, [...this.entries.values()], dataSize);
    } catch (err) {
      closeSync(this.fd);
      this.fd = null;
      throw err;
    }
  }

  static open(path: string): SafetensorsFile {
    if (!existsSync(path)) throw new Error(`safetensors: no such file ${path}`);
    return new SafetensorsFile(path);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`safetensors: tensor '${name}' not found in ${this.path} (it holds ${this.entries.size} tensors)`);
    return e;
  }

  /** Reads a float tensor as float32, into `out` when given (it must hold exactly numel elements). */
  readF32(name: string, out?: Float32Array): Float32Array {
    const e = this.entry(name);
    if (!FLOAT_DTYPES.has(e.dtype)) {
      throw new Error(`safetensors: tensor '${name}' in ${this.path} has dtype ${e.dtype}; only F32, F16 and BF16 load as parameters`);
    }
    const n = numel(e.shape);
    if (out && out.length !== n) {
      throw new Error(`safetensors: tensor '${name}' in ${this.path} has ${n} elements, the destination ${out.length}`);
    }
    const dst = out ?? new Float32Array(n);
    if (e.dtype === 'F32') {
      this.readInto(e, new Uint8Array(dst.buffer, dst.byteOffset, n * 4));
    } else {
      const half = new Uint16Array(n);
      this.readInto(e, new Uint8Array(half.buffer));
      if (e.dtype === 'F16') native.f16ToF32(dst, half);
      else native.bf16ToF32(dst, half);
    }
    // Safetensors is little-endian, as is every machine Node runs on here.
    return dst;
  }

  private readInto(e: TensorEntry, bytes: Uint8Array): void {
    if (this.fd === null) throw new Error(`safetensors: ${this.path} is closed`);
    let done = 0;
    while (done < bytes.length) {
      const got = readSync(this.fd, bytes, done, bytes.length - done, this.dataStart + e.begin + done);
      if (got === 0) throw new Error(`safetensors: tensor '${e.name}' in ${this.path} is truncated`);
      done += got;
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function checkEntry(path: string, name: string, v: unknown, dataSize: number): TensorEntry {
  const bad = (why: string) => new Error(`safetensors: tensor '${name}' in ${path}: ${why}`);
  if (v === null || typeof v !== 'object') throw bad('header entry is not an object');
  const { dtype, shape, data_offsets: offsets } = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !(dtype in BYTES)) throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
    throw bad(`bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  const want = numel(shape as number[]) * BYTES[dtype as StDtype];
  if (end - begin !== want) throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, shape ${JSON.stringify(shape)} of ${dtype} needs ${want}`);
  if (end > dataSize) throw bad(`data ends at byte ${end} but the file holds only ${dataSize} bytes of data (truncated)`);
  return { name, dtype: dtype as StDtype, shape: shape as number[], begin, end };
}

/**
 * The data section must be covered exactly, as the reference library
 * (safetensors' Metadata::validate) requires: sorted by offset, each tensor
 * begins where the one before ends, the first at 0 and the last at the end of
 * the file. An overlap would let one tensor read another's bytes; a gap or
 * trailing bytes mean the header does not describe the file.
 */
function checkLayout(path: string, entries: TensorEntry[], dataSize: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: TensorEntry | null = null;
  for (const e of sorted) {
    if (e.begin < at) {
      throw new Error(`safetensors: ${path}: tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${e.name}' [${e.begin}, ${e.end}] overlap (data_offsets must not share bytes)`);
    }
    if (e.begin > at) {
      const before = prev ? `after tensor '${prev.name}' (which ends at ${at})` : 'at the start of the data';
      throw new Error(`safetensors: ${path}: ${e.begin - at} byte(s) ${before} belong to no tensor; tensor '${e.name}' begins at ${e.begin} (tensors must be contiguous)`);
    }
    at = e.end;
    prev = e;
  }
  if (at !== dataSize) {
    const last = prev ? `the last tensor, '${prev.name}', ends at byte ${at}` : 'it holds no tensors';
    throw new Error(`safetensors: ${path}: the data section holds ${dataSize} bytes but ${last}; the header does not cover the data (${dataSize - at} trailing byte(s))`);
  }
}

/** Writes float32 tensors as one .safetensors file, converting to `dtype` (default F32). */
export function writeSafetensors(path: string, tensors: readonly NamedArray[], opts: { dtype?: SaveDtype; metadata?: Record<string, string> } = {}): void {
  const dtype = opts.dtype ?? 'F32';
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...opts.metadata } };
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`safetensors: tensor '${t.name}' given twice for ${path}`);
    seen.add(t.name);
    if (t.data.length !== numel(t.shape)) {
      throw new Error(`safetensors: tensor '${t.name}' for ${path} has ${t.data.length} values, shape ${JSON.stringify(t.shape)} needs ${numel(t.shape)}`);
    }
    const bytes = t.data.length * BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const fd = onDisk('create', path, () => openSync(path, 'w'));
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of tensors) {
      let bytes: Uint8Array;
      if (dtype === 'F32') {
        bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      } else {
        const half = new Uint16Array(t.data.length);
        if (dtype === 'F16') native.f32ToF16(half, t.data);
        else native.f32ToBf16(half, t.data);
        bytes = new Uint8Array(half.buffer);
      }
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
  } catch (err) {
    throw diskError(err, `write tensors to`, path);
  } finally {
    closeSync(fd);
  }
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/**
 * All tensors of a checkpoint folder, single-file or sharded: name -> the open file holding it.
 * Call close() when done.
 */
export class CheckpointTensors {
  private readonly files: SafetensorsFile[] = [];
  private readonly where = new Map<string, SafetensorsFile>();
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    const single = join(dir, SINGLE_FILE);
    const index = join(dir, INDEX_FILE);
    try {
      if (existsSync(index)) this.openSharded(index);
      else if (existsSync(single)) this.add(SafetensorsFile.open(single));
      else throw new Error(`checkpoint: ${dir} has neither ${SINGLE_FILE} nor ${INDEX_FILE}`);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  private openSharded(index: string): void {
    let parsed: { weight_map?: Record<string, string> };
    try {
      parsed = JSON.parse(readFileSync(index, 'utf8'));
    } catch (err) {
      throw new Error(`checkpoint: cannot parse ${index}: ${(err as Error).message}`);
    }
    const map = parsed.weight_map;
    if (!map || typeof map !== 'object') throw new Error(`checkpoint: ${index} has no weight_map`);
    const byFile = new Map<string, SafetensorsFile>();
    for (const [name, file] of Object.entries(map)) {
      if (typeof file !== 'string' || basename(file) !== file) throw new Error(`checkpoint: ${index} maps '${name}' to a bad file name ${JSON.stringify(file)}`);
      let f = byFile.get(file);
      if (!f) {
        f = SafetensorsFile.open(join(dirname(index), file));
        byFile.set(file, f);
        this.files.push(f);
      }
      if (!f.has(name)) throw new Error(`checkpoint: ${index} says tensor '${name}' is in ${file}, but it is not there`);
      this.where.set(name, f);
    }
  }

  private add(f: SafetensorsFile): void {
    this.files.push(f);
    for (const n of f.names()) this.where.set(n, f);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  entry(name: string): TensorEntry & { file: string } {
    const f = this.where.get(name);
    if (!f) throw new Error(`checkpoint: tensor '${name}' not found in ${this.dir}`);
    return { ...f.entry(name), file: f.path };
  }

  /** Reads a tensor as float32, checking its shape when `shape` is given. */
  readF32(name: string, shape?: readonly number[], out?: Float32Array): Float32Array {
    const f = this.where.get(name);
    if (!f) throw new Error(`checkpoint: tensor '${name}' not found in ${this.dir}`);
    const e = f.entry(name);
    if (shape && (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`checkpoint: tensor '${name}' in ${f.path} has shape [${e.shape}], the config implies [${shape}]`);
    }
    return f.readF32(name, out);
  }

  close(): void {
    for (const f of this.files) f.close();
    this.files.length = 0;
  }
}

/**
 * Writes tensors into a folder as `model.safetensors`, or, when they exceed `maxShardBytes`,
 * as `model-0000N-of-0000M.safetensors` shards plus `model.safetensors.index.json`.
 */
export function writeCheckpointTensors(dir: string, tensors: readonly NamedArray[], opts: { dtype?: SaveDtype; maxShardBytes?: number } = {}): string[] {
  const dtype = opts.dtype ?? 'F32';
  const size = (t: NamedArray) => t.data.length * BYTES[dtype];
  const max = opts.maxShardBytes ?? 5 * 1024 ** 3;
  const shards: NamedArray[][] = [[]];
  let used = 0;
  for (const t of tensors) {
    if (used > 0 && used + size(t) > max) {
      shards.push([]);
      used = 0;
    }
    shards[shards.length - 1].push(t);
    used += size(t);
  }
  if (shards.length === 1) {
    writeSafetensors(join(dir, SINGLE_FILE), tensors, { dtype });
    return [SINGLE_FILE];
  }
  const pad = (i: number) => String(i).padStart(5, '0');
  const names = shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    writeSafetensors(join(dir, names[i]), s, { dtype });
    for (const t of s) weightMap[t.name] = names[i];
  });
  const total = tensors.reduce((a, t) => a + size(t), 0);
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  onDisk('write', join(dir, INDEX_FILE), () => writeFileSync(join(dir, INDEX_FILE), JSON.stringify(index, null, 2) + '\n'));
  return [...names, INDEX_FILE];
}
