// The demo's pure helpers: the pre-training rows cut from the corpus, the
// per-answer KL of the evaluation, answer decoding, and the option checks.
import t from 'tap';
import { corpusRows } from '../../src/demo/pretrain.js';
import { answerKl } from '../../src/demo/evaluate.js';
import { checkDemoOptions, demoDefaults } from '../../src/demo/options.js';
import { ciDemoOptions } from './ci-options.js';
import { freeRunDir } from '../../src/demo/run.js';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

t.test('corpusRows joins documents with the end token and cuts whole rows', (t) => {
  const enc = { encode: (s: string) => [...s].map((c) => c.charCodeAt(0) - 96) };
  const r = corpusRows(['abc', 'de'], enc as never, 0, 3);
  // stream: a b c EOS d e EOS = 7 tokens -> 2 rows of 3, the last token dropped
  t.equal(r.rows, 2);
  t.same([...r.ids], [1, 2, 3, 0, 4, 5]);
  t.end();
});

t.test('answerKl sums logp - ref over the real answer tokens only', (t) => {
  // B 2, T 4, P 2: answer tokens at t = 2, 3; log-prob of token t sits at t - 1.
  const g = { B: 2, T: 4, P: 2, ids: new Int32Array(8), mask: Int32Array.from([1, 1, 1, 1, 0, 1, 1, 0]), answers: [] };
  const logp = Float32Array.from([-9, -1, -2, -9, -3, -4]);
  const ref = Float32Array.from([0, -1.5, -1, 0, -2, -9]);
  const kl = answerKl(g, logp, ref);
  t.ok(Math.abs(kl[0] - (0.5 + -1)) < 1e-6, `row 0: ${kl[0]}`);
  t.ok(Math.abs(kl[1] - -1) < 1e-6, `row 1 stops at its pad: ${kl[1]}`);
  t.end();
});

t.test('demo options are checked by name', (t) => {
  t.doesNotThrow(() => checkDemoOptions(demoDefaults));
  t.doesNotThrow(() => checkDemoOptions(ciDemoOptions));
  t.throws(() => checkDemoOptions({ ...demoDefaults, pretrain: { ...demoDefaults.pretrain, steps: 0 } }), /pretrain\.steps/);
  t.throws(() => checkDemoOptions({ ...demoDefaults, model: { layers: 2, hidden: 130, heads: 4 } }), /multiple of model\.heads/);
  t.throws(() => checkDemoOptions({ ...demoDefaults, extra: 1 } as never), /unknown key 'extra'/);
  t.end();
});

t.test('a demo never writes into a run directory that holds a run', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-demo-dir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = join(dir, 'demo');
  t.equal(freeRunDir(run, false), run, 'absent: used as it is');
  mkdirSync(run);
  t.equal(freeRunDir(run, false), run, 'empty: used as it is');
  writeFileSync(join(run, 'metrics.jsonl'), '');
  t.equal(freeRunDir(run, false), `${run}-2`);
  t.equal(freeRunDir(run, true), run, 'resuming continues it');
  t.end();
});
