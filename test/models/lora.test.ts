// LoRA: adapters on the linears chosen by module-path substring; merging gives
// the logits of the unmerged adapter; saving writes merged plain weights; only
// the adapters train with onlyOptimizeLora.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/models/checkpoint.js';
import { addLora, loraParameters, mergedParams } from '../../src/models/lora.js';
import type { Transformer } from '../../src/models/transformer.js';
import { fromI32, mean, neg, noGrad, tidy } from '../../src/tensor/index.js';
import { maxDiff, variantDir } from './fixtures.js';

/** Folds every adapter into its base weight in place and drops the adapters (what a save does to the written copy). */
function mergeLora(model: Transformer): void {
  const merged = mergedParams(model);
  for (const name of [...model.lora.keys()]) {
    model.p(`${name}.w`).f32.set(merged.get(`${name}.w`)!.data);
    model.lora.get(name)!.dispose();
    model.lora.delete(name);
  }
}

const ids = fromI32(Int32Array.from({ length: 2 * 9 }, (_, i) => 3 + ((i * 37) % 120)), [2, 9]);
const logitsOf = (m: ReturnType<typeof loadModel>) => noGrad(() => Float32Array.from(m.forward(ids).f32));

t.test('adapters match module paths, merge exactly, and save as plain weights', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-lora-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const m = loadModel(variantDir('llama_gqa'));
  const base = logitsOf(m);
  const names = addLora(m, { moduleName: 'self_attn', rank: 4, alpha: 8, seed: 1 });
  t.same(names, ['h.0.qkv', 'h.0.o', 'h.1.qkv', 'h.1.o'], 'self_attn selects the fused qkv and o_proj of each layer');
  t.same(maxDiff(logitsOf(m), base).max, 0, 'B starts at zero: the model is unchanged');
  // Give the adapters weight, as training would.
  for (const a of m.lora.values()) a.B.f32.forEach((_, i, arr) => { arr[i] = Math.sin(i) * 0.05; });
  const adapted = logitsOf(m);
  t.ok(maxDiff(adapted, base).max > 1e-3, 'the adapters change the logits');
  saveModel(m, dir);
  const saved = loadModel(dir);
  t.equal(saved.lora.size, 0);
  const d = maxDiff(logitsOf(saved), adapted).max;
  t.ok(d <= 1e-5, `saved (merged) model gives the adapted logits: max abs diff ${d.toExponential(2)}`);
  mergeLora(m);
  t.equal(m.lora.size, 0);
  t.ok(maxDiff(logitsOf(m), adapted).max <= 1e-5, 'merging in place gives the same logits');
  t.throws(() => addLora(m, { moduleName: 'nothing_like_this', rank: 2 }), /no linear layer of this llama model has a module path containing 'nothing_like_this'/);
  t.throws(() => addLora(m, { moduleName: 'mlp', rank: 0 }), /rank must be a positive integer/);
  t.end();
});

t.test('onlyOptimizeLora: gradients reach the adapters only', (t) => {
  const m = loadModel(variantDir('opt_pre_proj'));
  addLora(m, { moduleName: 'decoder.layers.', rank: 2, onlyOptimizeLora: true });
  t.equal(loraParameters(m).length, 2 * m.lora.size);
  t.same(m.parameters().length, loraParameters(m).length, 'only the adapters are trainable');
  for (const a of m.lora.values()) a.B.f32.fill(0.01);
  const loss = tidy(() => neg(mean(m.tokenLogprobs(ids))));
  loss.backward();
  t.ok([...m.params.values()].every((p) => p.grad === null), 'no base parameter gets a gradient');
  t.ok(loraParameters(m).every((p) => p.grad !== null && p.grad.f32.some((g) => g !== 0)), 'every adapter gets a gradient');
  t.end();
});
