import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';
import { summaryText } from '../../src/report/text.js';

t.test('the end-of-run summary as aligned text', async (t) => {
  const summary = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/demo/report-run/summary.json'), 'utf8'));
  const text = summaryText(summary, { samples: 1 });
  const lines = text.split('\n');
  t.equal(lines[0].trimEnd(), '                                      before     after');
  t.equal(lines[1], 'gold score per answer (AFINN)           0.19      2.25');
  t.equal(lines[2], 'answers with a positive gold score       19%       66%');
  t.match(text, /reward model held-out accuracy 82%, final KL 3\.00 nats, 1\.31 s per PPO step, 8\.4 min in all/);
  t.match(text, /before \(gold -\): it did find that many laws are outmoded\./);
  t.match(text, /after  \(gold -\): it was a great and happy day for the city\./, 'no gold score the run did not record');
  t.match(summaryText({ samples: [{ prompt: 'p', before: 'a', after: 'b', gold_before: -1, gold_after: 3 }] }), /before \(gold -1\): a[\s\S]*after  \(gold 3\): b/, 'the recorded gold scores');
  t.notMatch(text, /She/, 'only the first sample');
  const empty = summaryText({});
  t.match(empty, /gold score per answer \(AFINN\)\s+-\s+-/);
  t.match(summaryText({ samples: [{ prompt: 'p', before: 'x '.repeat(100), after: 'y' }] }, { width: 40 }), /before \(gold -\): (x ){8}x\.\.\./, 'long answers are cut');
});
