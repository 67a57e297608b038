// Sampling and stopping: seeded sampling is reproducible, top-k 1 is greedy,
// EOS stops a row (padded after it, mask 0), temperature/top-p filter as
// transformers does, onToken sees every step and can stop the batch, and bad
// options are errors.
import t from 'tap';
import { loadModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';
import { flat, loadExpected, variantDir } from './fixtures.js';

const e = loadExpected('gpt2');
const model = loadModel(variantDir('gpt2'));
t.teardown(() => model.dispose());
const prompt = flat(e.left);
const mask = flat(e.left_mask);
const { B, T } = e;

t.test('seeded sampling is reproducible; top-k 1 equals greedy', (t) => {
  const a = generate(model, prompt, mask, B, T, { maxNewTokens: 8, temperature: 1.5, topP: 0.9, seed: 7, eosTokenId: null });
  const b = generate(model, prompt, mask, B, T, { maxNewTokens: 8, temperature: 1.5, topP: 0.9, seed: 7, eosTokenId: null });
  const c = generate(model, prompt, mask, B, T, { maxNewTokens: 8, temperature: 1.5, topP: 0.9, seed: 8, eosTokenId: null });
  t.same(Array.from(a.sequences), Array.from(b.sequences), 'same seed, same tokens');
  t.not(Array.from(a.sequences).join(), Array.from(c.sequences).join(), 'another seed, other tokens');
  const greedy = generate(model, prompt, mask, B, T, { maxNewTokens: 8, eosTokenId: null, logprobs: true });
  const k1 = generate(model, prompt, mask, B, T, { maxNewTokens: 8, topK: 1, temperature: 3, seed: 3, eosTokenId: null, logprobs: true });
  t.same(Array.from(k1.sequences), Array.from(greedy.sequences));
  // A tiny top-p keeps only the most likely token too.
  const p = generate(model, prompt, mask, B, T, { maxNewTokens: 8, topP: 1e-6, seed: 3, eosTokenId: null });
  t.same(Array.from(p.sequences), Array.from(greedy.sequences));
  t.same(Array.from(k1.logprobs!), Array.from(greedy.logprobs!), 'log-probs are of the model, not of the filtered distribution');
  t.end();
});

t.test('EOS stops a row; later tokens are pads with mask 0; all rows stopped ends early', (t) => {
  const greedy = generate(model, prompt, mask, B, T, { maxNewTokens: 6, eosTokenId: null });
  // Row 0's first greedy token becomes "EOS": row 0 stops at once.
  const eos = greedy.sequences[T];
  const r = generate(model, prompt, mask, B, T, { maxNewTokens: 6, eosTokenId: eos, padTokenId: 0, logprobs: true });
  const W = r.T;
  t.equal(r.sequences[T], eos);
  t.equal(r.mask[T], 1, 'the EOS token itself is real');
  for (let s = 1; s < r.newTokens; s++) {
    t.equal(r.sequences[T + s], 0, `row 0 token ${s} is a pad`);
    t.equal(r.mask[T + s], 0);
    t.equal(r.logprobs![s], 0);
  }
  // Rows that did not meet EOS continue as greedy did, until they meet it.
  for (let b = 1; b < B; b++) {
    for (let s = 0; s < r.newTokens; s++) {
      const g = greedy.sequences[b * greedy.T + T + s];
      t.equal(r.sequences[b * W + T + s], g);
      if (g === eos) break;
    }
  }
  const allStop = generate(model, prompt.subarray(0, T), mask.subarray(0, T), 1, T, { maxNewTokens: 6, eosTokenId: eos });
  t.equal(allStop.newTokens, 1, 'a batch whose rows all stopped ends');
  t.equal(allStop.T, T + 1);
  t.end();
});

t.test('onToken gets each step\'s token of every row; false stops every row after that step', (t) => {
  const full = generate(model, prompt, mask, B, T, { maxNewTokens: 6, eosTokenId: null });
  const seen: number[][] = [];
  const full2 = generate(model, prompt, mask, B, T, {
    maxNewTokens: 6, eosTokenId: null, onToken: (step, tokens) => (seen.push([step, ...tokens]), true),
  });
  t.same(Array.from(full2.sequences), Array.from(full.sequences), 'a hook returning true changes nothing');
  t.same(seen.map((r) => r[0]), [0, 1, 2, 3, 4, 5], 'called once per step');
  for (let s = 0; s < 6; s++) {
    t.same(seen[s].slice(1), Array.from({ length: B }, (_, b) => full.sequences[b * full.T + T + s]), `step ${s}: the new token of every row`);
  }
  const cut = generate(model, prompt, mask, B, T, { maxNewTokens: 6, eosTokenId: null, onToken: (step) => step < 2, logprobs: true });
  t.equal(cut.newTokens, 3, 'false at step 2 keeps that step\'s token and stops');
  t.equal(cut.T, T + 3);
  t.equal(cut.logprobs!.length, B * 3);
  t.equal(full.logprobs, null, 'no log-probs unless asked for');
  for (let b = 0; b < B; b++) {
    t.same(Array.from(cut.sequences.subarray(b * cut.T, (b + 1) * cut.T)), Array.from(full.sequences.subarray(b * full.T, b * full.T + T + 3)), `row ${b} is the full run's prefix`);
  }
  // A row stopped at its EOS is handed over as the pad id afterwards.
  const first = full.sequences[T];
  const padded: number[] = [];
  const r = generate(model, prompt, mask, B, T, { maxNewTokens: 3, eosTokenId: first, padTokenId: 7, onToken: (step, tokens) => (step > 0 && padded.push(tokens[0]), true) });
  t.equal(padded.length, r.newTokens - 1);
  t.ok(padded.every((x) => x === 7), 'row 0 after its EOS reports the pad');
  t.end();
});

t.test('bad options are errors naming them', (t) => {
  t.throws(() => generate(model, prompt, mask, B, T, { maxNewTokens: 0 }), /maxNewTokens must be a positive integer/);
  t.throws(() => generate(model, prompt, mask, B, T, { maxNewTokens: 2, temperature: 0 }), /temperature must be > 0/);
  t.throws(() => generate(model, prompt, mask, B, T, { maxNewTokens: 2, topP: 1.5 }), /topP must be in \(0, 1\]/);
  t.throws(() => generate(model, prompt, new Int32Array(B * T), B, T, { maxNewTokens: 2 }), /prompt row 0 has no real token/);
  t.throws(() => generate(model, prompt, mask, B, T, { maxNewTokens: 64 }), /a prompt of 10 tokens \+ 64 new tokens exceeds the 64 learned positions of this gpt2 model/);
  t.end();
});
