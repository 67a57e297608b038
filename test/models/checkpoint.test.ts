// Checkpoint folders: every fixture written by transformers loads, writes back
// bit-identical (single file and sharded, with a value head), converts F16/BF16
// like torch, and broken files give errors naming the tensor and the file.
import t, { type Test } from 'tap';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normaliseConfig, readConfig } from '../../src/models/config.js';
import { readWeights, writeCheckpoint } from '../../src/models/checkpoint.js';
import { CheckpointTensors, SafetensorsFile, writeSafetensors } from '../../src/models/safetensors.js';
import { VARIANTS, fixturesDir, variantDir } from './fixtures.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-ckpt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every tensor of a folder, by name. */
function allTensors(dir: string): Map<string, { shape: number[]; data: Float32Array }> {
  const c = new CheckpointTensors(dir);
  try {
    return new Map(c.names().map((n) => [n, { shape: c.entry(n).shape, data: c.readF32(n) }]));
  } finally {
    c.close();
  }
}

function sameTensors(t: Test, a: Map<string, { shape: number[]; data: Float32Array }>, b: Map<string, { shape: number[]; data: Float32Array }>, what: string): void {
  t.same([...a.keys()].sort(), [...b.keys()].sort(), `${what}: same tensor names`);
  let bad = '';
  for (const [n, x] of a) {
    const y = b.get(n);
    if (!y || JSON.stringify(x.shape) !== JSON.stringify(y.shape) || !Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength).equals(Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength))) {
      bad ||= n;
    }
  }
  t.equal(bad, '', `${what}: every tensor bit-identical`);
}

for (const v of VARIANTS) {
  t.test(`${v}: loads and writes back bit-identical`, (t) => {
    const cfg = readConfig(variantDir(v));
    const w = readWeights(variantDir(v), cfg);
    t.equal(w.valueHead, null);
    const out = tmp(t);
    writeCheckpoint(out, cfg, w.params);
    const orig = allTensors(variantDir(v));
    sameTensors(t, orig, allTensors(out), 'single file');
    t.same(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model_type, cfg.modelType);
    // Sharded, with a value head beside the base tensors.
    const vh = Float32Array.from({ length: cfg.embedDim }, (_, i) => i / 7);
    writeCheckpoint(out, cfg, w.params, { maxShardBytes: 16_000, valueHead: vh });
    const back = allTensors(out);
    t.same(Array.from(back.get('v_head.weight')!.data), Array.from(vh));
    back.delete('v_head.weight');
    sameTensors(t, orig, back, 'sharded');
    t.same(readWeights(out, cfg).valueHead, vh);
    t.end();
  });
}

t.test('F16 and BF16 read like torch converts them, and write back the same bits', (t) => {
  const expected = JSON.parse(readFileSync(join(fixturesDir, 'dtypes.json'), 'utf8')) as Record<string, number[]>;
  const f = SafetensorsFile.open(join(fixturesDir, 'dtypes.safetensors'));
  t.teardown(() => f.close());
  for (const k of ['f32', 'f16', 'bf16']) t.same(Array.from(f.readF32(k)), expected[k].map(Math.fround), k);
  t.same(f.entry('m2x3').shape, [2, 3]);
  t.throws(() => f.readF32('i64'), /tensor 'i64' in .*dtypes\.safetensors has dtype I64/);
  t.throws(() => f.readF32('nope'), /tensor 'nope' not found in .*dtypes\.safetensors/);
  const dir = tmp(t);
  const x = f.readF32('f32');
  for (const dtype of ['F16', 'BF16'] as const) {
    writeSafetensors(join(dir, 'x.safetensors'), [{ name: 'x', shape: [x.length], data: x }], { dtype });
    const g = SafetensorsFile.open(join(dir, 'x.safetensors'));
    t.same(Array.from(g.readF32('x')), expected[dtype.toLowerCase()].map(Math.fround), `${dtype} written by us reads back as torch rounds it`);
    t.equal(g.entry('x').dtype, dtype);
    g.close();
  }
  t.end();
});

t.test('broken checkpoints: errors name the tensor and the file', (t) => {
  const src = variantDir('gpt2');
  const cfg = readConfig(src);
  const dir = tmp(t);
  cpSync(src, dir, { recursive: true });
  const file = join(dir, 'model.safetensors');
  // Truncated: the last tensor's data runs past the end.
  truncateSync(file, statSync(file).size - 10);
  t.throws(() => readWeights(dir, cfg), /tensor '[^']+' in .*model\.safetensors: data ends at byte \d+ but the file holds only \d+ bytes of data \(truncated\)/);
  truncateSync(file, 5);
  t.throws(() => readWeights(dir, cfg), /model\.safetensors is truncated \(5 bytes/);
  // Corrupt header.
  const bad = Buffer.alloc(24);
  bad.writeBigUInt64LE(16n);
  bad.write('{"a": nonsense  ', 8);
  writeFileSync(file, bad);
  t.throws(() => readWeights(dir, cfg), /model\.safetensors has a corrupt JSON header/);
  // A missing tensor.
  const all = allTensors(src);
  all.delete('transformer.h.1.mlp.c_fc.bias');
  writeSafetensors(file, [...all].map(([name, v]) => ({ name, ...v })));
  t.throws(() => readWeights(dir, cfg), /tensor 'transformer\.h\.1\.mlp\.c_fc\.bias' \(needed by the gpt2 config\) is missing from /);
  // A shape that does not match the config.
  const wider = normaliseConfig({ ...cfg.raw, n_inner: 64 });
  copyFileSync(join(src, 'model.safetensors'), file);
  t.throws(() => readWeights(dir, wider), /tensor 'transformer\.h\.0\.mlp\.c_fc\.weight' in .*model\.safetensors has shape \[32,128\], the config implies \[32,64\]/);
  // A tensor the config does not use.
  const extra = allTensors(src);
  extra.set('transformer.h.9.attn.c_attn.weight', { shape: [1], data: new Float32Array(1) });
  writeSafetensors(file, [...extra].map(([name, v]) => ({ name, ...v })));
  t.throws(() => readWeights(dir, cfg), /1 tensor\(s\) the gpt2 config does not use: transformer\.h\.9\.attn\.c_attn\.weight/);
  // A shard named by the index but absent.
  const sharded = tmp(t);
  cpSync(variantDir('llama_gqa'), sharded, { recursive: true });
  rmSync(join(sharded, 'model-00003-of-00006.safetensors'));
  t.throws(() => readWeights(sharded, readConfig(sharded)), /no such file .*model-00003-of-00006\.safetensors/);
  t.end();
});

t.test('a checkpoint of the base model alone (no base prefix, with mask buffers) loads', (t) => {
  const src = variantDir('gpt2');
  const cfg = readConfig(src);
  const dir = tmp(t);
  copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
  const all = allTensors(src);
  // As the hub's gpt2 model.safetensors: no 'transformer.' prefix, and the causal-mask buffers.
  const hub = [...all].map(([name, v]) => ({ name: name.replace(/^transformer\./, ''), ...v }));
  hub.push({ name: 'h.0.attn.bias', shape: [1, 1, 4, 4], data: new Float32Array(16).fill(1) });
  writeSafetensors(join(dir, 'model.safetensors'), hub);
  const a = readWeights(src, cfg).params;
  const b = readWeights(dir, cfg).params;
  t.same(Array.from(b.get('h.1.qkv.w')!.data), Array.from(a.get('h.1.qkv.w')!.data));
  t.end();
});
