import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { repoRoot } from '../../src/util/paths.js';
import { documentText, loadBrown, splitCorpus } from '../../src/demo/corpus.js';
import { trainBpe } from '../../src/demo/bpe.js';
import { BpeEncoder } from '../../src/demo/bpe-encoder.js';
import { tokenizerConfigJson, tokenizerJson } from '../../src/demo/tokenizer-json.js';

const fixtures = join(repoRoot, 'test/fixtures/demo');

t.test('the ids Python tokenizers and transformers gave (fixture)', async (t) => {
  const ref = JSON.parse(readFileSync(join(fixtures, 'bpe-reference.json'), 'utf8')) as { samples: { text: string; ids: number[] }[] };
  const enc = new BpeEncoder(JSON.parse(readFileSync(join(fixtures, 'tokenizer/tokenizer.json'), 'utf8')));
  for (const { text, ids } of ref.samples) t.same(enc.encode(text), ids, JSON.stringify(text.slice(0, 40)));
});

t.test('the same ids as @huggingface/tokenizers on held-out documents, faster', async (t) => {
  const split = splitCorpus(loadBrown(), { seed: 3, heldOutFraction: 0.1 });
  const bpe = trainBpe(split.pretrain.map(documentText), { vocabSize: 4096, specialTokens: ['<|endoftext|>', '<|pad|>'] });
  const json = JSON.parse(JSON.stringify(tokenizerJson(bpe)));
  const config = tokenizerConfigJson(bpe, { modelMaxLength: 64, bosToken: '<|endoftext|>', eosToken: '<|endoftext|>', padToken: '<|pad|>' });
  const lib = new Tokenizer(json, config);
  const enc = new BpeEncoder(json);
  const docs = split.heldOut.slice(0, 12).map(documentText);
  docs.push('two docs<|endoftext|>joined<|pad|><|pad|> and \u00e9\u00e8 \ud83d\ude00 1,234.5  \t\n end');
  let t0 = performance.now();
  const expected = docs.map((d) => lib.encode(d).ids);
  const libMs = performance.now() - t0;
  t0 = performance.now();
  const got = docs.map((d) => enc.encode(d));
  const encMs = performance.now() - t0;
  let same = 0;
  got.forEach((ids, i) => (ids.length === expected[i].length && ids.every((v, j) => v === expected[i][j]) ? same++ : t.same(ids, expected[i], `document ${i}`)));
  t.equal(same, docs.length, `all ${docs.length} documents (${expected.reduce((s, e) => s + e.length, 0)} tokens) encode alike`);
  t.comment(`@huggingface/tokenizers ${libMs.toFixed(0)} ms, BpeEncoder ${encMs.toFixed(0)} ms (loaded machine)`);
  t.throws(() => new BpeEncoder({ ...json, pre_tokenizer: { type: 'Metaspace' } }, 'x.json'), /x\.json is not a plain GPT-2 byte-level tokenizer/);
  t.throws(() => new BpeEncoder({ model: { type: 'WordPiece' } }, 'y.json'), /y\.json has no BPE model/);
});
