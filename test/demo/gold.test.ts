import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { goldScore, goldSummary, repetitionRate, summariseAnswers } from '../../src/demo/gold.js';
import { writeReport } from '../../src/report/report.js';
import { writeSummary } from '../../src/report/summary.js';

// Expected values are AFINN-165 valences read from the sentiment package's
// labels.json: good +3, happy +3, love +3, bad -3, war -2.
t.test('AFINN sums, negation flips, per-word score', async (t) => {
  const g = goldScore('The war was good, and we were happy.');
  t.equal(g.score, -2 + 3 + 3);
  t.equal(g.words, 8);
  t.equal(g.perWord, 4 / 8);
  t.same(g.positive.sort(), ['good', 'happy']);
  t.same(g.negative, ['war']);
  t.equal(goldScore('It is not good.').score, -3, "'not' flips the sign of the next word");
  t.equal(goldScore("I don't love it").score, -3);
  t.same(goldScore(''), { score: 0, words: 0, perWord: 0, repetition: 0, repeatedWords: 0, positive: [], negative: [] });
});

t.test('repetition rates expose a repeated word', async (t) => {
  t.equal(repetitionRate(['a', 'b', 'c'], 1), 0);
  t.equal(repetitionRate(['good', 'good', 'good', 'good'], 1), 3 / 4);
  t.equal(repetitionRate(['good', 'good', 'good', 'good'], 2), 2 / 3);
  t.equal(repetitionRate(['a', 'b', 'a', 'b', 'a'], 2), 2 / 4);
  t.equal(repetitionRate(['a'], 2), 0, 'no bigrams, no repetition');
  const gamed = goldScore('good good good good good good');
  t.equal(gamed.score, 18);
  t.equal(gamed.perWord, 3);
  t.equal(gamed.repeatedWords, 5 / 6);
  t.ok(gamed.repetition > 0.7, 'bigram repetition is high');
  t.equal(goldScore('The jury said it did find that many laws are outmoded.').repetition, 0);
});

t.test('summaries of a set of answers', async (t) => {
  const s = summariseAnswers(['good', 'bad bad', 'nothing here', 'happy love']);
  t.equal(s.count, 4);
  t.equal(s.meanScore, (3 - 6 + 0 + 6) / 4);
  t.equal(s.meanPerWord, (3 - 3 + 0 + 3) / 4);
  t.equal(s.sharePositive, 2 / 4);
  t.equal(s.shareNegative, 1 / 4);
  t.equal(s.meanWords, (1 + 2 + 2 + 2) / 4);
  t.equal(s.meanRepeatedWords, (0 + 0.5 + 0 + 0) / 4);
  t.throws(() => summariseAnswers([]), /summariseAnswers: no answers/);
});

t.test('goldSummary writes the gold figures into a summary the report reads (the report scores nothing itself)', async (t) => {
  const prompts = ['Human: Continue this: A Assistant:', 'Human: Continue this: B Assistant:', 'Human: Continue this: C Assistant:'];
  const g = goldSummary(prompts, [' it rained.', ' bad news.', ' no change.'], [' a good day.', ' great and happy.', ' no change.'], 2);
  t.equal(g.gold!.before!.meanScore, (0 - 3 - 1) / 3, "AFINN: bad -3, 'no' -1");
  t.equal(g.gold!.after!.meanScore, (3 + 6 - 1) / 3);
  t.same(g.samples, [
    { prompt: prompts[0], before: ' it rained.', after: ' a good day.', gold_before: 0, gold_after: 3 },
    { prompt: prompts[1], before: ' bad news.', after: ' great and happy.', gold_before: -3, gold_after: 6 },
  ]);
  t.throws(() => goldSummary(prompts, [], [], 1), /goldSummary: 3 prompts but 0 answers before and 0 after/);
  const dir = mkdtempSync(join(tmpdir(), 'quartet-gold-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeSummary(join(dir, 'summary.json'), { ...g, rm: { accuracy: 0.8 } });
  const r = writeReport(dir);
  t.same(r.problems.filter((p) => p.includes('summary')), []);
  t.match(readFileSync(r.html, 'utf8'), /Gold score per answer \(AFINN, mean\)<\/th><td>-1\.33<\/td><td>2\.67<\/td><td class="change">\+4\.00<\/td>/);
});
