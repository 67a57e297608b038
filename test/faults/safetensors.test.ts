// Safetensors files whose header does not describe their data exactly are
// refused on open, as the reference library refuses them (Metadata::validate):
// overlapping tensors (one would read another's bytes), gaps, offsets that end
// before they begin or past the file, trailing bytes. Each error names the
// file and the tensor(s).
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors } from '../../src/models/safetensors.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'q-st-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A file with this header (tensors as name -> [begin, end] of F32 data of (end-begin)/4 values) and `data` bytes. */
function raw(path: string, tensors: Record<string, [number, number]>, dataBytes: number, extra: Record<string, unknown> = {}): void {
  const header: Record<string, unknown> = { ...extra };
  for (const [name, [b, e]] of Object.entries(tensors)) header[name] = { dtype: 'F32', shape: [Math.max(0, (e - b) / 4)], data_offsets: [b, e] };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
}

const open = (p: string) => () => SafetensorsFile.open(p).close();

t.test('a well-formed file opens, whatever the order of its header keys', (t) => {
  const f = join(tmp(t), 'ok.safetensors');
  raw(f, { b: [8, 16], a: [0, 8], empty: [16, 16] }, 16);
  const s = SafetensorsFile.open(f);
  t.same(s.names().sort(), ['a', 'b', 'empty']);
  s.close();
  writeSafetensors(f, [{ name: 'x', shape: [2, 3], data: new Float32Array(6) }, { name: 'y', shape: [0], data: new Float32Array(0) }]);
  t.doesNotThrow(open(f), 'what we write passes');
  t.end();
});

t.test('overlapping offsets name both tensors and the file', (t) => {
  const f = join(tmp(t), 'overlap.safetensors');
  raw(f, { first: [0, 8], second: [4, 12] }, 12);
  t.throws(open(f), new RegExp(`${f}: tensors 'first' \\[0, 8\\] and 'second' \\[4, 12\\] overlap`));
  // The same bytes for two tensors (the case that loaded silently before).
  raw(f, { a: [0, 8], b: [0, 8] }, 8);
  t.throws(open(f), /tensors '[ab]' \[0, 8\] and '[ab]' \[0, 8\] overlap/);
  t.end();
});

t.test('offsets that end before they begin, gaps, and data past the end are refused', (t) => {
  const d = tmp(t);
  const f = join(d, 'x.safetensors');
  const header = { w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } };
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(f, Buffer.concat([len, json, Buffer.alloc(8)]));
  t.throws(open(f), new RegExp(`tensor 'w' in ${f}: data_offsets \\[8, 4\\] end before they begin`));
  raw(f, { a: [0, 8], b: [12, 20] }, 20);
  t.throws(open(f), new RegExp(`${f}: 4 byte\\(s\\) after tensor 'a' \\(which ends at 8\\) belong to no tensor; tensor 'b' begins at 12`));
  raw(f, { a: [4, 12] }, 12);
  t.throws(open(f), /4 byte\(s\) at the start of the data belong to no tensor; tensor 'a' begins at 4/);
  raw(f, { a: [0, 8], b: [8, 16] }, 12);
  t.throws(open(f), new RegExp(`tensor 'b' in ${f}: data ends at byte 16 but the file holds only 12 bytes of data \\(truncated\\)`));
  t.end();
});

t.test('trailing bytes the header does not cover are refused', (t) => {
  const f = join(tmp(t), 'tail.safetensors');
  raw(f, { a: [0, 8] }, 12);
  t.throws(open(f), new RegExp(`${f}: the data section holds 12 bytes but the last tensor, 'a', ends at byte 8; the header does not cover the data \\(4 trailing byte\\(s\\)\\)`));
  raw(f, {}, 4);
  t.throws(open(f), /holds 4 bytes but it holds no tensors/);
  t.end();
});

t.test('__metadata__ must map strings to strings', (t) => {
  const f = join(tmp(t), 'meta.safetensors');
  raw(f, { a: [0, 4] }, 4, { __metadata__: { format: 'pt', n: 3 } });
  t.throws(open(f), new RegExp(`${f}: __metadata__ must map strings to strings`));
  t.end();
});
