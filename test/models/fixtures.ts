// Shared helpers of the model tests: the golden fixtures written by
// scripts/fixtures/models.py (transformers itself) and a few comparisons.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';
import { SafetensorsFile } from '../../src/models/safetensors.js';

export const FIXTURE_VERSION = 1;
export const fixturesDir = join(repoRoot, 'test', 'fixtures', 'models');
export const VARIANTS = ['gpt2', 'opt_pre_proj', 'opt_post', 'neox_parallel', 'neox_sequential', 'llama_gqa', 'qwen2', 'mistral'];

export interface Expected {
  version: number;
  B: number;
  T: number;
  new_tokens: number;
  pad_id: number;
  ids: number[][];
  left: number[][];
  left_mask: number[][];
  right: number[][];
  right_mask: number[][];
  gen: number[][];
  gen_left: number[][];
  grads: string[];
  arrays: Map<string, { shape: number[]; data: Float32Array }>;
}

export function variantDir(name: string): string {
  return join(fixturesDir, name);
}

export function loadExpected(name: string): Expected {
  const dir = variantDir(name);
  const meta = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Omit<Expected, 'arrays'>;
  if (meta.version !== FIXTURE_VERSION) {
    throw new Error(`fixture ${dir} is version ${meta.version}, the tests expect ${FIXTURE_VERSION}: run .venv/bin/python scripts/fixtures/models.py from the repository root (after npm run bench -- setup --fixtures)`);
  }
  const f = SafetensorsFile.open(join(dir, 'expected.safetensors'));
  const arrays = new Map<string, { shape: number[]; data: Float32Array }>();
  try {
    for (const n of f.names()) arrays.set(n, { shape: f.entry(n).shape, data: f.readF32(n) });
  } finally {
    f.close();
  }
  return { ...meta, arrays };
}

/** Largest |a - b| and where, for reports like llm.c's test_gpt2. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`maxDiff: lengths ${a.length} and ${b.length}`);
  let max = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) {
      max = d;
      at = i;
    }
  }
  return { max, at };
}

export function flat(rows: number[][]): Int32Array {
  return Int32Array.from(rows.flat());
}
