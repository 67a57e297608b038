// `initModelFolder` for every family: the folder loads (config, weights, tokenizer),
// follows transformers' initialisation (unit norms, zero biases, std 0.02, GPT-2's
// scaled residual projections), generates, and bad sizes are errors naming them.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';
import { initModelFolder } from '../../src/models/init.js';
import { QTokenizer } from '../../src/models/tokenizer.js';

function std(x: Float32Array): number {
  let s = 0, s2 = 0;
  for (const v of x) { s += v; s2 += v * v; }
  return Math.sqrt(s2 / x.length - (s / x.length) ** 2);
}

t.test('a random folder of every family loads and generates', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-init-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const modelType of ['gpt2', 'opt', 'gpt_neox', 'llama', 'mistral', 'qwen2']) {
    const out = join(dir, modelType);
    const gqa = ['llama', 'mistral', 'qwen2'].includes(modelType);
    const cfg = initModelFolder(out, { modelType, layers: 2, hidden: 64, heads: 4, kvHeads: gqa ? 2 : undefined, vocab: 512, seed: 4 });
    const m = loadModel(out);
    t.equal(m.cfg.modelType, modelType);
    t.equal(m.cfg.kvHeads, gqa ? 2 : 4);
    const tok = QTokenizer.load(out);
    t.equal(tok.vocabSize, 512);
    t.equal(tok.eosId, 511);
    t.same(m.cfg.eosTokenIds, [511], 'the config and the tokenizer agree on eos');
    t.same(Array.from(m.p('h.0.ln1.w').f32).every((v) => v === 1), true, `${modelType}: norms start at 1`);
    if (m.params.has('h.0.qkv.b')) t.ok(m.p('h.0.qkv.b').f32.every((v) => v === 0), `${modelType}: biases start at 0`);
    const s = std(m.p('wte').f32);
    t.ok(Math.abs(s - 0.02) < 0.002, `${modelType}: embedding std ${s.toFixed(4)} ~ 0.02`);
    if (modelType === 'gpt2') {
      const so = std(m.p('h.0.o.w').f32);
      t.ok(Math.abs(so - 0.02 / Math.sqrt(4)) < 0.002, `gpt2: residual projection std ${so.toFixed(4)} ~ 0.02/sqrt(2L)`);
    }
    const ids = tok.encode('Hello there');
    const r = generate(m, Int32Array.from(ids), null, 1, ids.length, { maxNewTokens: 3, eosTokenId: null });
    t.equal(r.newTokens, 3);
    void cfg;
    m.dispose();
  }
  t.throws(() => initModelFolder(join(dir, 'x'), { modelType: 'gpt2', layers: 1, hidden: 30, heads: 4, vocab: 300 }), /hidden 30 is not a multiple of heads 4/);
  t.throws(() => initModelFolder(join(dir, 'x'), { modelType: 'gpt2', layers: 1, hidden: 32, heads: 4, vocab: 100 }), /vocab 100 is too small for the byte-level tokenizer/);
  t.throws(() => initModelFolder(join(dir, 'x'), { modelType: 'llama', layers: 0, hidden: 32, heads: 4, vocab: 300 }), /layers must be a positive integer, got 0/);
  t.end();
});
