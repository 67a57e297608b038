// Reader for test/fixtures/ops (written by scripts/fixtures/ops.py; format in its header).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';

export const OPS_FIXTURE_VERSION = 1;

interface TensorDesc {
  dtype: 'f32' | 'i32' | 'u16';
  offset: number;
  shape: number[];
}

interface RawCase {
  name: string;
  op: string;
  args: Record<string, number | boolean | number[]>;
  tensors: Record<string, TensorDesc>;
}

export interface OpCase {
  name: string;
  op: string;
  args: Record<string, number | boolean | number[]>;
  /** Float tensors, as fresh copies (a test may write into them). */
  f32(name: string): Float32Array;
  i32(name: string): Int32Array;
  u16(name: string): Uint16Array;
  has(name: string): boolean;
  shape(name: string): number[];
}

export function loadOpCases(): OpCase[] {
  const dir = join(repoRoot, 'test', 'fixtures', 'ops');
  const meta = JSON.parse(readFileSync(join(dir, 'ops.json'), 'utf8')) as { version: number; cases: RawCase[] };
  if (meta.version !== OPS_FIXTURE_VERSION) {
    throw new Error(`test/fixtures/ops/ops.json is version ${meta.version}, the test reads ` +
      `${OPS_FIXTURE_VERSION}: regenerate from the repository root with .venv/bin/python scripts/fixtures/ops.py (after npm run bench -- setup)`);
  }
  const bin = readFileSync(join(dir, 'ops.bin'));
  const bytes = new Uint8Array(bin.buffer, bin.byteOffset, bin.byteLength);
  return meta.cases.map((c) => {
    const desc = (name: string, dtype: string): TensorDesc => {
      const d = c.tensors[name];
      if (!d) throw new Error(`ops fixture '${c.name}': no tensor '${name}'`);
      if (d.dtype !== dtype) throw new Error(`ops fixture '${c.name}': tensor '${name}' is ${d.dtype}, not ${dtype}`);
      return d;
    };
    const count = (d: TensorDesc) => d.shape.reduce((a, b) => a * b, 1);
    // Copy into a fresh aligned buffer: the file offset need not suit the typed array.
    const copy = (d: TensorDesc, width: number) => bytes.slice(d.offset, d.offset + count(d) * width).buffer;
    return {
      name: c.name,
      op: c.op,
      args: c.args,
      f32: (name) => new Float32Array(copy(desc(name, 'f32'), 4)),
      i32: (name) => new Int32Array(copy(desc(name, 'i32'), 4)),
      u16: (name) => new Uint16Array(copy(desc(name, 'u16'), 2)),
      has: (name) => name in c.tensors,
      shape: (name) => desc(name, c.tensors[name]?.dtype ?? 'f32').shape,
    };
  });
}
