// Attention dropout from the config (GPT-2's attn_pdrop) in a tiny GPT-2 whose
// embedding and residual dropout are 0, so only the attention probabilities are
// dropped: a training forward differs from eval, is deterministic for a seed
// (loss and gradients), changes with the seed, and is switched off by
// dropoutEnabled = false and by setDropout(0).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/models/checkpoint.js';
import { initModelFolder } from '../../src/models/init.js';
import type { Transformer } from '../../src/models/transformer.js';
import { fromI32, maskedMean, neg, tensor, tidy } from '../../src/tensor/index.js';

const [B, T] = [2, 12];
const ids = fromI32(Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 37) % 200)), [B, T]);
// Row 1 is left-padded by 4.
const mask = Int32Array.from({ length: B * T }, (_, i) => (i >= T && i < T + 4 ? 0 : 1));
const lossMask = tensor(Array.from({ length: B * (T - 1) }, (_, i) => mask[Math.floor(i / (T - 1)) * T + (i % (T - 1)) + 1]), [B, T - 1]);

const dir = mkdtempSync(join(tmpdir(), 'quartet-attn-dropout-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
initModelFolder(dir, { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 300, seed: 1 });
const cfgPath = join(dir, 'config.json');
const cfgJson = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
writeFileSync(cfgPath, JSON.stringify({ ...cfgJson, embd_pdrop: 0, resid_pdrop: 0, attn_pdrop: 0.3 }));

/** Mean next-token loss and its gradients (the model is disposed afterwards). */
function step(m: Transformer, train: boolean): { loss: number; grads: Float32Array[] } {
  const loss = tidy(() => neg(maskedMean(m.tokenLogprobs(ids, { mask, train }), lossMask)));
  loss.backward();
  const grads = m.parameters().map((p) => Float32Array.from(p.grad!.f32));
  const value = loss.item();
  loss.dispose();
  m.dispose();
  return { loss: value, grads };
}

const model = (seed: number) => loadModel(dir, { seed });
const bitwise = (a: Float32Array[], b: Float32Array[]) => a.every((g, i) => g.every((x, j) => Object.is(x, b[i][j])));

t.test('attn_pdrop is read and applied in training only', (t) => {
  const m = model(5);
  t.same(m.cfg.dropout, { embed: 0, residual: 0, attention: 0.3 }, 'the config asks for attention dropout only');
  m.dispose();
  const evalRun = step(model(5), false);
  const a = step(model(5), true);
  const b = step(model(5), true);
  const c = step(model(6), true);
  t.not(a.loss, evalRun.loss, `training loss ${a.loss} differs from eval ${evalRun.loss}`);
  t.equal(b.loss, a.loss, 'the same seed gives the same training loss');
  t.ok(bitwise(b.grads, a.grads), 'and bitwise the same gradients');
  t.not(c.loss, a.loss, `another seed gives another loss (${c.loss})`);
  t.end();
});

t.test('dropoutEnabled = false and setDropout(0) turn attention dropout off', (t) => {
  const evalRun = step(model(5), false);
  const off = model(5);
  off.dropoutEnabled = false;
  t.equal(step(off, true).loss, evalRun.loss, 'dropoutEnabled = false: training loss equals eval');
  const zero = model(5);
  zero.setDropout(0);
  t.equal(step(zero, true).loss, evalRun.loss, '--dropout 0: training loss equals eval');
  t.end();
});

t.test('gradient checkpointing replays the attention dropout mask', (t) => {
  const plain = step(model(9), true);
  const m = model(9);
  m.gradientCheckpointing = true;
  const ck = step(m, true);
  t.equal(ck.loss, plain.loss, 'same loss');
  t.ok(bitwise(ck.grads, plain.grads), 'bitwise the same gradients');
  t.end();
});
