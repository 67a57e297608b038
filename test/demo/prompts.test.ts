import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { repoRoot } from '../../src/util/paths.js';
import { loadBrown, splitCorpus } from '../../src/demo/corpus.js';
import { continuationPrompt, defaultPromptOptions, makeDemoPrompts, makeExamples, sentenceToExample } from '../../src/demo/prompts.js';
import { mulberry32 } from '../../src/demo/rng.js';

// A small tokenizer trained on the corpus (the bpe fixture) counts tokens.
const dir = join(repoRoot, 'test/fixtures/demo/tokenizer');
const read = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
const tk = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
const opts = { ...defaultPromptOptions, countTokens: (s: string) => tk.encode(s).ids.length };

t.test('a sentence becomes a DeepSpeed-Chat style prompt and answer', async (t) => {
  t.equal(continuationPrompt('The jury said'), 'Human: Continue this: The jury said Assistant:');
  const ex = sentenceToExample('The jury said it did find that many laws are outmoded.', mulberry32(3), opts)!;
  t.ok(ex);
  t.match(ex.prompt, /^Human: Continue this: The jury said( \w+)* Assistant:$/);
  t.match(ex.answer, /^ \S.* outmoded\.$/);
  const start = ex.prompt.slice('Human: Continue this: '.length, -' Assistant:'.length);
  t.equal(start + ex.answer, 'The jury said it did find that many laws are outmoded.', 'start + answer is the sentence');
  t.equal(sentenceToExample('Too short here.', mulberry32(1), opts), null, 'too few words');
  t.equal(sentenceToExample('and then the jury said it did find that.', mulberry32(1), opts), null, 'a fragment');
  const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ');
  t.equal(sentenceToExample(long, mulberry32(1), opts), null, 'answer over 24 tokens');
  t.throws(() => makeExamples(['a b c'], 1, 1, { ...opts, minStartWords: 9 }), /minStartWords \(9\) exceeds maxStartWords \(8\)/);
});

t.test('demo prompt sets: sizes, limits, disjoint, seeded', async (t) => {
  const split = splitCorpus(loadBrown(), { seed: 1, heldOutFraction: 0.1 });
  const counts = { sft: 300, rm: 200, eval: 128 };
  const a = makeDemoPrompts(split, counts, 5, opts);
  t.equal(a.sft.length, 300);
  t.equal(a.rm.length, 200);
  t.equal(a.eval.length, 128);
  t.ok([...a.sft, ...a.rm, ...a.eval].every((e) => opts.countTokens(e.answer) <= 24 && opts.countTokens(e.prompt) <= 32), 'every example within the token limits');
  const sftPrompts = new Set(a.sft.map((e) => e.prompt));
  t.notOk(a.rm.some((e) => sftPrompts.has(e.prompt)), 'rm prompts are not sft prompts');
  const heldText = split.heldOut.flatMap((d) => d.paragraphs.flat()).join('\n');
  for (const [i, e] of a.eval.slice(0, 20).entries()) {
    const start = e.prompt.slice('Human: Continue this: '.length, -' Assistant:'.length);
    t.ok(heldText.includes(start + e.answer), `eval prompt ${i} comes from a held-out sentence`);
  }
  const b = makeDemoPrompts(split, counts, 5, opts);
  t.same(b, a, 'same seed, same sets');
  t.not(makeDemoPrompts(split, counts, 6, opts).eval[0].prompt, a.eval[0].prompt, 'another seed, other prompts');
  t.throws(() => makeDemoPrompts(split, { sft: 1, rm: 1, eval: 100_000 }, 5, opts), /only \d+ held-out sentences fit, but eval asks for 100000/);
});
