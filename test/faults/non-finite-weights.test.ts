// NaN or infinite weights are refused at load with the file, the tensor and
// the first bad value named (they would train to a NaN loss that looks like a
// run); allowNonFinite loads them. F16 infinities count, after conversion.
import t, { type Test } from 'tap';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfig } from '../../src/models/config.js';
import { loadModel, readWeights } from '../../src/models/checkpoint.js';
import { CheckpointTensors, writeSafetensors, type NamedArray } from '../../src/models/safetensors.js';
import { variantDir } from '../models/fixtures.js';

function copy(t: Test, variant: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'q-nan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(variantDir(variant), dir, { recursive: true });
  return dir;
}

/** Rewrites the folder's model.safetensors with `edit` applied to tensor `name`. */
function poison(dir: string, name: string, edit: (a: Float32Array) => void, dtype: 'F32' | 'F16' = 'F32'): void {
  const c = new CheckpointTensors(dir);
  const all: NamedArray[] = c.names().map((n) => ({ name: n, shape: c.entry(n).shape, data: c.readF32(n) }));
  c.close();
  edit(all.find((x) => x.name === name)!.data);
  writeSafetensors(join(dir, 'model.safetensors'), all, { dtype });
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

t.test('a NaN in one tensor: refused, naming the file, tensor, count and first index; allowed with the flag', (t) => {
  const dir = copy(t, 'gpt2');
  const file = join(dir, 'model.safetensors');
  poison(dir, 'transformer.h.1.mlp.c_proj.weight', (a) => { a[5] = NaN; a[9] = NaN; });
  const cfg = readConfig(dir);
  t.throws(() => readWeights(dir, cfg), new RegExp(`checkpoint: tensor 'transformer\\.h\\.1\\.mlp\\.c_proj\\.weight' in ${esc(file)} holds 2 non-finite value\\(s\\) of \\d+ \\(the first, at index 5, is NaN\\); refusing to load it \\(set checks\\.allowNonFiniteWeights to load it anyway\\)`));
  t.throws(() => loadModel(dir), /holds 2 non-finite value/);
  const m = loadModel(dir, { allowNonFinite: true });
  t.ok(m.params.size > 0, 'loads with allowNonFinite');
  t.end();
});

t.test('an infinity in an F16 file (after conversion) and in the value head', (t) => {
  // The fixture is sharded: its tensors are rewritten as one F16 file, the shards and index removed.
  const dir = copy(t, 'llama_gqa');
  const c = new CheckpointTensors(dir);
  const all: NamedArray[] = c.names().map((n) => ({ name: n, shape: c.entry(n).shape, data: c.readF32(n) }));
  c.close();
  for (const f of readdirSync(dir).filter((f) => f.startsWith('model'))) rmSync(join(dir, f));
  const name = all[0].name;
  all[0].data[0] = 70000; // beyond F16's largest finite value: converts to +Infinity
  writeSafetensors(join(dir, 'model.safetensors'), all, { dtype: 'F16' });
  t.throws(() => readWeights(dir, readConfig(dir)), new RegExp(`tensor '${esc(name)}' in ${esc(join(dir, 'model.safetensors'))} holds 1 non-finite value\\(s\\) of \\d+ \\(the first, at index 0, is Infinity\\)`));

  const gpt = copy(t, 'gpt2');
  const cfg = readConfig(gpt);
  const c2 = new CheckpointTensors(gpt);
  const withHead: NamedArray[] = c2.names().map((n) => ({ name: n, shape: c2.entry(n).shape, data: c2.readF32(n) }));
  c2.close();
  withHead.push({ name: 'v_head.weight', shape: [1, cfg.embedDim], data: new Float32Array(cfg.embedDim).fill(-Infinity) });
  writeSafetensors(join(gpt, 'model.safetensors'), withHead);
  t.throws(() => readWeights(gpt, cfg), /tensor 'v_head\.weight' in .* holds 32 non-finite value\(s\) of 32 \(the first, at index 0, is -Infinity\)/);
  t.end();
});
