// Training-side behaviour: dropout from the config and its switch, the value
// head (values, DeepSpeed-Chat end scores, saved as v_head.weight), AdamW steps
// that lower the loss, and an exact save/load round trip of trained weights.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel } from '../../src/models/checkpoint.js';
import { initModelFolder } from '../../src/models/init.js';
import { optimizerGroups } from '../../src/models/lora.js';
import { addValueHead } from '../../src/models/value-head.js';
import { AdamW, fromI32, mean, neg, noGrad, tidy, zeroGrad } from '../../src/tensor/index.js';
import { maxDiff, variantDir } from './fixtures.js';

const ids = fromI32(Int32Array.from({ length: 2 * 8 }, (_, i) => 3 + ((i * 29) % 120)), [2, 8]);

t.test('dropout follows the config, is seeded, and can be switched off', (t) => {
  const m = loadModel(variantDir('gpt2'), { seed: 5 });
  t.equal(m.cfg.dropout.residual, 0.1);
  const evalLogits = noGrad(() => Float32Array.from(m.forward(ids).f32));
  const a = noGrad(() => Float32Array.from(m.forward(ids, { train: true }).f32));
  t.ok(maxDiff(a, evalLogits).max > 1e-3, 'training forward drops activations');
  const m2 = loadModel(variantDir('gpt2'), { seed: 5 });
  t.same(maxDiff(noGrad(() => m2.forward(ids, { train: true }).f32), a).max, 0, 'same seed, same dropout masks');
  m.setDropout(0);
  t.same(maxDiff(noGrad(() => m.forward(ids, { train: true }).f32), evalLogits).max, 0, '--dropout 0: training forward equals eval');
  m.setDropout(0.5);
  t.ok(maxDiff(noGrad(() => m.forward(ids, { train: true }).f32), evalLogits).max > 1e-3, '--dropout 0.5 drops again');
  t.throws(() => m.setDropout(1), /dropout must be in \[0, 1\), got 1/);
  m.dropoutEnabled = false;
  t.same(maxDiff(noGrad(() => m.forward(ids, { train: true }).f32), evalLogits).max, 0, 'dropout switched off: training forward equals eval');
  t.end();
});

t.test('value head: per-token values, end scores, gradient, saved beside the base tensors', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-vh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const m = loadModel(variantDir('opt_post'));
  addValueHead(m, 1);
  t.same(m.valueHead!.shape, [1, 16], 'OPT with project_out: the head works at word_embed_proj_dim');
  const v = noGrad(() => Float32Array.from(m.values(ids).f32));
  t.equal(v.length, 16);
  // The value is the head applied to the last hidden state.
  const h = noGrad(() => Float32Array.from(m.hidden(ids).f32));
  let dot = 0;
  for (let c = 0; c < 16; c++) dot += h[5 * 16 + c] * m.valueHead!.f32[c];
  t.ok(Math.abs(dot - v[5]) < 1e-5, 'values = hidden @ v_head');
  const loss = tidy(() => mean(m.values(ids)));
  loss.backward();
  t.ok(m.valueHead!.grad!.f32.some((g) => g !== 0), 'the value head gets a gradient');
  saveModel(m, dir);
  const back = loadModel(dir);
  t.same(Array.from(back.valueHead!.f32), Array.from(m.valueHead!.f32));
  t.same(maxDiff(noGrad(() => back.values(ids).f32), v).max, 0, 'reloaded critic gives the same values');
  t.end();
});

t.test('AdamW steps lower the loss; trained weights save and load back exactly', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-train-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  initModelFolder(join(dir, 'init'), { modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 300, seed: 3 });
  const m = loadModel(join(dir, 'init'));
  const opt = new AdamW(optimizerGroups(m, { weightDecay: 0.01 }), { lr: 1e-2 });
  const losses: number[] = [];
  for (let step = 0; step < 8; step++) {
    const loss = tidy(() => neg(mean(m.tokenLogprobs(ids))));
    losses.push(loss.item());
    loss.backward();
    opt.step();
    zeroGrad(m.parameters());
    loss.dispose();
  }
  t.ok(losses[7] < losses[0] - 0.5, `loss falls: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  saveModel(m, join(dir, 'trained'), { tokenizerFrom: join(dir, 'init') });
  const back = loadModel(join(dir, 'trained'));
  for (const [name, p] of m.params) {
    if (maxDiff(p.f32, back.p(name).f32).max !== 0) t.fail(`parameter ${name} differs after the round trip`);
  }
  t.same(maxDiff(noGrad(() => back.forward(ids).f32), noGrad(() => m.forward(ids).f32)).max, 0, 'same logits after save and load');
  t.end();
});
