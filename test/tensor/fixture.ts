// Test helpers of the tensor layer: read the PyTorch fixtures
// (safetensors files written by scripts/fixtures/tensor.py) and compare arrays
// with a stated tolerance, reporting the worst element side by side.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';
import { fromData, type Tensor } from '../../src/tensor/index.js';

export const FIXTURE_VERSION = '1';

export type Fixture = Map<string, Tensor>;

export function loadFixture(name: string): Fixture {
  const file = join(repoRoot, 'test/fixtures/tensor', name + '.safetensors');
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const meta = (header as unknown as { __metadata__?: { version?: string } }).__metadata__;
  if (meta?.version !== FIXTURE_VERSION) {
    throw new Error(`${file}: fixture version ${meta?.version} != ${FIXTURE_VERSION}; regenerate with /work/venv/bin/python scripts/fixtures/tensor.py`);
  }
  const base = 8 + n;
  const out: Fixture = new Map();
  for (const [key, e] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const [s, end] = e.data_offsets;
    // Copy into an aligned buffer (the data section need not be 4-byte aligned).
    const bytes = new Uint8Array(buf.subarray(base + s, base + end));
    const data = e.dtype === 'I32' ? new Int32Array(bytes.buffer) : e.dtype === 'F32' ? new Float32Array(bytes.buffer) : null;
    if (data === null) throw new Error(`${file}: ${key} has dtype ${e.dtype} (expected F32 or I32)`);
    out.set(key, fromData(data, e.shape));
  }
  return out;
}

export function get(f: Fixture, key: string): Tensor {
  const t = f.get(key);
  if (t === undefined) throw new Error(`fixture has no tensor ${key}`);
  return t;
}

/** Largest |a - b| / (atol + rtol |b|) (<= 1 passes) and where it happens. */
export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): { ok: boolean; msg: string } {
  if (actual.length !== expected.length) return { ok: false, msg: `length ${actual.length} != ${expected.length}` };
  let worst = 0;
  let at = -1;
  let maxAbs = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    const r = Number.isNaN(d) ? Infinity : d / (atol + rtol * Math.abs(expected[i]));
    maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
    if (r > worst) {
      worst = r;
      at = i;
    }
  }
  const msg = at < 0 ? 'exact' : `max |diff| ${maxAbs.toExponential(2)}; worst at [${at}]: got ${actual[at]}, want ${expected[at]} (${worst.toFixed(2)}x the tolerance)`;
  return { ok: worst <= 1, msg };
}
