import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { repoRoot } from '../../src/util/paths.js';
import { documentText, loadBrown, sentencesOf, splitCorpus } from '../../src/demo/corpus.js';
import { bytesToUnicode, preTokenize, trainBpe } from '../../src/demo/bpe.js';
import { tokenizerJson, writeTokenizer } from '../../src/demo/tokenizer-json.js';

const fixtures = join(repoRoot, 'test/fixtures/demo');
const specials = ['<|endoftext|>', '<|pad|>'];
const fileOpts = { modelMaxLength: 64, bosToken: '<|endoftext|>', eosToken: '<|endoftext|>', padToken: '<|pad|>' };
const docs = loadBrown();

function loadTokenizer(dir: string): Tokenizer {
  const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
  return new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

interface Reference {
  num_docs: number;
  vocab_size: number;
  eos_token_id: number;
  pad_token_id: number;
  samples: { text: string; ids: number[] }[];
  reference_trainer: { vocab_size: number; merges: [string, string][] };
}
const ref: Reference = JSON.parse(readFileSync(join(fixtures, 'bpe-reference.json'), 'utf8'));

t.test("byte table and pre-tokeniser are GPT-2's", async (t) => {
  const table = bytesToUnicode();
  t.equal(new Set(table).size, 256);
  t.equal(table[0x20], '\u0120', 'space is Ġ');
  t.equal(table[0x0a], '\u010a', 'newline is Ċ');
  t.equal(table[0x41], 'A');
  t.same(preTokenize("He said: don't  go 42x"), ['He', ' said', ':', ' don', "'t", ' ', ' go', ' 42', 'x']);
});

t.test('same merges as Hugging Face tokenizers BpeTrainer on the same texts', async (t) => {
  const bpe = trainBpe(docs.slice(0, ref.num_docs).map(documentText), { vocabSize: ref.vocab_size, specialTokens: specials });
  t.equal(bpe.vocab.size, ref.reference_trainer.vocab_size);
  t.same(bpe.merges, ref.reference_trainer.merges, 'merges, in order, equal those of the Rust trainer');
  // The committed fixture tokenizer was written by this trainer: retraining must reproduce it.
  const committed = JSON.parse(readFileSync(join(fixtures, 'tokenizer/tokenizer.json'), 'utf8'));
  t.same(JSON.parse(JSON.stringify(tokenizerJson(bpe))), committed, 'deterministic: same tokenizer.json as the fixture');
});

t.test('@huggingface/tokenizers gives the ids that Python tokenizers and transformers gave', async (t) => {
  const tk = loadTokenizer(join(fixtures, 'tokenizer'));
  for (const { text, ids } of ref.samples) {
    t.same(tk.encode(text).ids, ids, `ids of ${JSON.stringify(text.slice(0, 40))}`);
    // Tokenizers.js throws on decoding an empty list (Python returns '').
    if (ids.length > 0) t.equal(tk.decode(ids, { skip_special_tokens: false }), text);
  }
  t.equal(tk.token_to_id('<|endoftext|>'), ref.eos_token_id);
  t.equal(tk.token_to_id('<|pad|>'), ref.pad_token_id);
});

t.test('4,096 tokens from the whole corpus: size, speed, round trip on held-out text, determinism', async (t) => {
  const split = splitCorpus(docs, { seed: 7, heldOutFraction: 0.1 });
  const texts = split.pretrain.map(documentText);
  const t0 = performance.now();
  const bpe = trainBpe(texts, { vocabSize: 4096, specialTokens: specials });
  const seconds = (performance.now() - t0) / 1000;
  t.comment(`trained 4,096 tokens on ${texts.length} documents in ${seconds.toFixed(1)} s`);
  t.ok(seconds < 60, 'well under a minute on one core');
  t.equal(bpe.vocab.size, 4096);
  t.same(bpe.specialTokens, [{ content: '<|endoftext|>', id: 4094 }, { content: '<|pad|>', id: 4095 }]);
  t.same(new Set(bpe.vocab.values()).size, 4096, 'ids are distinct');
  t.ok(Math.max(...bpe.vocab.values()) === 4095, 'ids are 0..4095');

  const again = trainBpe(texts.slice().reverse(), { vocabSize: 4096, specialTokens: specials });
  t.same(again.merges, bpe.merges, 'same merges whatever the order of the texts');

  const dir = mkdtempSync(join(tmpdir(), 'quartet-bpe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeTokenizer(dir, bpe, fileOpts);
  const tk = loadTokenizer(dir);
  const held = sentencesOf(split.heldOut);
  let mismatches = 0, tokens = 0, chars = 0;
  for (const s of held) {
    const ids = tk.encode(s).ids;
    tokens += ids.length;
    chars += s.length;
    if (tk.decode(ids) !== s) mismatches++;
  }
  t.equal(mismatches, 0, `decode(encode(s)) == s for all ${held.length} held-out sentences`);
  t.comment(`${(chars / tokens).toFixed(2)} characters per token on held-out text`);
  t.ok(chars / tokens > 3, 'the merges compress English text');
  const eot = tk.encode('end.<|endoftext|>').ids;
  t.equal(eot[eot.length - 1], 4094, 'the special token is matched whole');
});

t.test('bad options are reported by name', async (t) => {
  t.throws(() => trainBpe(['a b'], { vocabSize: 100, specialTokens: [] }), /vocabSize must be an integer >= 256/);
  t.throws(() => trainBpe(['a b'], { vocabSize: 300, specialTokens: [] }), /allow only \d+ merged tokens/);
  t.throws(() => trainBpe(['a b'], { vocabSize: 300, specialTokens: ['x', 'x'] }), /duplicates/);
  const bpe = trainBpe(['ab ab ab'], { vocabSize: 259, specialTokens: ['<|endoftext|>'] });
  t.throws(() => writeTokenizer('/nonexistent', bpe, { ...fileOpts, padToken: '<pad>' }), /padToken '<pad>' is not one of the special tokens/);
});
