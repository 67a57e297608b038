import t from 'tap';
import { labelPairs, toJsonl } from '../../src/demo/pairs.js';

t.test('the more positive answer is chosen, ties are dropped', async (t) => {
  const p = 'Human: Continue this: The day was Assistant:';
  const out = labelPairs([
    { prompt: p, answers: [' grey and cold.', ' bright and happy.'] },
    { prompt: p, answers: [' a good one.', ' a bad one.'] },
    { prompt: p, answers: [' long.', ' short.'] },
    { prompt: p, answers: [' not good.', ' fine enough.'] },
  ]);
  t.same(out.rows, [
    { prompt: p, chosen: ' bright and happy.', rejected: ' grey and cold.' },
    { prompt: p, chosen: ' a good one.', rejected: ' a bad one.' },
    { prompt: p, chosen: ' fine enough.', rejected: ' not good.' },
  ]);
  t.equal(out.ties, 1);
  // AFINN: bright +1, happy +3 vs grey -1; good +3 vs bad -3; fine +2 vs not good -3.
  t.equal(out.meanGap, (5 + 6 + 5) / 3);
});

t.test('bad rows are named; JSONL is one object per line', async (t) => {
  t.throws(() => labelPairs([{ prompt: 'x', answers: ['a', 'b'] }, { prompt: 'y', answers: ['only one'] }]), /pair 1 must have a string prompt and exactly two/);
  const rows = [{ prompt: 'p', chosen: 'c "q"', rejected: 'r\nr' }, { prompt: 'p2', chosen: 'c2', rejected: 'r2' }];
  const text = toJsonl(rows);
  t.equal(text.split('\n').length, 3, 'two lines and a final newline');
  t.same(text.trim().split('\n').map((l) => JSON.parse(l)), rows);
  t.equal(toJsonl([]), '');
});
