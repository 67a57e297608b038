// Tokenising (JS against the Rust tokenizers library's ids; the piscina pool
// against the main thread), the tokenised cache (hits, and a re-tokenise after
// an edit), and a step's data: split determinism, blending, examples, batches.
import t from 'tap';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config/defaults.js';
import { QTokenizer } from '../../src/models/tokenizer.js';
import { formatRow } from '../../src/data/format.js';
import { TokenizerPool } from '../../src/data/pool.js';
import { BadRows } from '../../src/data/rows.js';
import { parseDataFile } from '../../src/data/sources.js';
import { chosenIds, promptIds, rejectedIds, tokenizeRows } from '../../src/data/token-table.js';
import { dataContext, loadPpoPrompts, loadRmData, loadSftData, loadStepRows, type DataContext } from '../../src/data/datasets.js';
import { sequence } from '../../src/data/examples.js';
import { BatchIterator, ppoBatch, rmBatch, sftBatch } from '../../src/data/batches.js';
import { repoRoot } from '../../src/util/paths.js';

const fx = (...p: string[]) => join(repoRoot, 'test/fixtures/data', ...p);
const TOK = fx('tokenizer');

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function ctxFor(dir: string, paths: string[], over: Partial<DataContext['data']> = {}, tokenizerDir = TOK): DataContext {
  const c = defaultConfig();
  c.outputDir = dir;
  c.data = { ...c.data, paths, workers: 1, ...over };
  return dataContext(c, tokenizerDir);
}

t.test('the JS tokenizer gives the Rust library\'s ids', async (t) => {
  const enc = JSON.parse(readFileSync(fx('encodings.json'), 'utf8')) as { text: string; plain: number[]; bos: number[] }[];
  const plain = QTokenizer.load(TOK), bos = QTokenizer.load(fx('tokenizer-bos'));
  for (const e of enc) {
    t.same(plain.encode(e.text, { addSpecialTokens: false }), e.plain, JSON.stringify(e.text));
    t.same(bos.encode(e.text, { addSpecialTokens: true }), e.bos, `${JSON.stringify(e.text)} with <s>`);
  }
});

t.test('the pool tokenises exactly as the main thread', async (t) => {
  const bad = new BadRows('error');
  const raw = await parseDataFile(fx('pairs.jsonl'), readFileSync(fx('pairs.jsonl')), bad);
  // several chunks of 40 rows, the last one short, spread over 2 workers
  const rows = Array.from({ length: 130 }, (_, i) => formatRow(raw[i % raw.length], { promptTemplate: 'Human: {prompt} Assistant:', endOfConversationToken: '<|endoftext|>' }));
  const pool = new TokenizerPool(fx('tokenizer-bos'), 2, 40);
  t.teardown(() => pool.close());
  const fromPool = await pool.tokenize(rows);
  const local = tokenizeRows(QTokenizer.load(fx('tokenizer-bos')), rows);
  t.same(fromPool.offsets, local.offsets);
  t.same(fromPool.ids, local.ids);
  t.same(fromPool.hasRejected, local.hasRejected);
  const tok = QTokenizer.load(fx('tokenizer-bos'));
  t.equal(tok.decode(promptIds(local, 0)), '<s>Human: Tell me about the weather (#0). Assistant:');
  t.equal(tok.decode(chosenIds(local, 0)), ' It is lovely and bright.<|endoftext|>');
  t.equal(tok.decode(rejectedIds(local, 0)!), ' It is awful.<|endoftext|>');
});

t.test('cache: a second load reads it; an edited file is tokenised again', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'mine.jsonl');
  cpSync(fx('pairs.jsonl'), file);
  const ctx = ctxFor(dir, [file]);
  const first = await loadStepRows(ctx, 'sft');
  t.match(first.report.datasets[0], { filesFromCache: 0, filesTokenised: 1 });
  const second = await loadStepRows(ctx, 'sft');
  t.match(second.report.datasets[0], { filesFromCache: 1, filesTokenised: 0 });
  t.same(second.train.ids, first.train.ids, 'the cache gives back the same tokens');
  t.same(second.train.offsets, first.train.offsets);
  t.equal(readdirSync(ctx.cacheDir).length, 1);

  appendFileSync(file, JSON.stringify({ prompt: 'A new row about the sea.', chosen: 'It is lovely.', rejected: 'It is awful.' }) + '\n');
  const third = await loadStepRows(ctx, 'sft');
  t.match(third.report.datasets[0], { filesFromCache: 0, filesTokenised: 1, trainRows: 28, testRows: 3 }, '31 rows: 28 train, 3 held out');
  // a different tokenizer is a different entry too
  const other = await loadStepRows(ctxFor(dir, [file], {}, fx('tokenizer-bos')), 'sft');
  t.match(other.report.datasets[0], { filesFromCache: 0, filesTokenised: 1 });
  t.equal(readdirSync(ctx.cacheDir).filter((f) => f.endsWith('.bin')).length, 3);
  // a damaged entry is rebuilt, not trusted
  for (const f of readdirSync(ctx.cacheDir)) writeFileSync(join(ctx.cacheDir, f), 'QDC1garbage');
  const fourth = await loadStepRows(ctx, 'sft');
  t.match(fourth.report.datasets[0], { filesFromCache: 0, filesTokenised: 1 });
  t.same(fourth.train.ids, third.train.ids);
});

t.test('skipped bad rows are reported again from the cache', async (t) => {
  const dir = tmp(t);
  const ctx = ctxFor(dir, [fx('bad.jsonl')], { onBadRow: 'skip', split: '1,1,1' });
  const a = await loadStepRows(ctx, 'sft');
  const b = await loadStepRows(ctx, 'sft');
  t.equal(a.report.skipped.length, 4);
  t.same(b.report.skipped, a.report.skipped);
  t.match(b.report.skipped[1], /bad\.jsonl:5: missing 'prompt'/);
  await t.rejects(loadStepRows(ctxFor(dir, [fx('bad.jsonl')], { split: '1,1,1' }), 'sft'), /bad\.jsonl:3: not valid JSON/, "onBadRow 'error' is not fooled by the skip policy's cache entry");
});

t.test('step split: deterministic, disjoint across steps, blended over datasets', async (t) => {
  const dir = tmp(t);
  const paths = [fx('pairs.jsonl'), fx('hf-rm-static')];
  const ctx = ctxFor(dir, paths);
  const tok = QTokenizer.load(TOK);
  const prompts = async (step: 'sft' | 'rm' | 'ppo') => {
    const r = await loadStepRows(ctx, step);
    const text = (tt: typeof r.train) => Array.from({ length: tt.n }, (_, i) => tok.decode(promptIds(tt, i)));
    return { train: text(r.train), eval: text(r.eval), report: r.report };
  };
  const sft = await prompts('sft'), rm = await prompts('rm'), ppo = await prompts('ppo');
  // pairs.jsonl: 30 rows -> 27 train / 3 held out; hf-rm-static: 40 train / 10 test files
  t.match(sft.report.datasets, [{ trainRows: 27, testRows: 3, heldOut: true }, { trainRows: 40, testRows: 10, heldOut: false }]);
  // 2,4,4 of 27 -> 5/11/11 and of 40 -> 8/16/16
  t.same([sft.train.length, rm.train.length, ppo.train.length], [13, 27, 27]);
  const all = [...sft.train, ...rm.train, ...ppo.train];
  t.equal(new Set(all).size, all.length, 'no prompt is in two steps');
  t.ok(sft.train.some((p) => p.startsWith('\n\nHuman:')) && sft.train.some((p) => p.startsWith('Human:')), 'both datasets are blended in');
  const again = await prompts('sft');
  t.same(again.train, sft.train, 'same seed, same rows in the same order');
  const c2 = ctxFor(dir, paths);
  c2.seed = 99;
  const other = await loadStepRows(c2, 'sft');
  t.not(Array.from({ length: other.train.n }, (_, i) => tok.decode(promptIds(other.train, i))).join('|'), sft.train.join('|'), 'another seed, another split');
});

t.test('examples: lengths, truncation keeps the special prefix, batches', async (t) => {
  const dir = tmp(t);
  const ctx = ctxFor(dir, [fx('pairs.jsonl')], { maxPromptLen: 6, maxAnswerLen: 4, split: '1,1,1' }, fx('tokenizer-bos'));
  const tok = QTokenizer.load(fx('tokenizer-bos'));
  const sft = await loadSftData(ctx);
  const s0 = sequence(sft.train.seqs, 0);
  t.equal(sft.train.promptLens[0], 6);
  t.equal(s0.length, 10);
  t.equal(s0[0], tok.encode('', { addSpecialTokens: true })[0], 'a cut prompt still starts with <s>');
  t.match(tok.decode(s0.subarray(1, 6)), /Assistant:$/, 'the end of the prompt is kept');
  t.ok(sft.report.stats.promptsTruncated > 0 && sft.report.stats.answersTruncated > 0);

  const b = sftBatch(sft.train, [0, 1], sft.padId, true);
  t.equal(b.T, Math.max(...b.lengths));
  // maskPrompt: targets are the answer tokens only, columns promptLen .. length-1
  t.same(Array.from(b.lossMask.subarray(0, b.T)), Array.from({ length: b.T }, (_, i) => (i >= 6 && i < b.lengths[0] ? 1 : 0)));
  const whole = sftBatch(sft.train, [0], sft.padId, false);
  t.same(Array.from(whole.lossMask), Array.from({ length: whole.T }, (_, i) => (i >= 1 && i < whole.lengths[0] ? 1 : 0)));

  const rm = await loadRmData(ctx);
  const rb = rmBatch(rm.train, [0, 2], rm.padId);
  t.equal(rb.B, 4);
  t.equal(rb.pairs, 2);
  t.same(Array.from(rb.ids.subarray(0, rb.lengths[0])), Array.from(sequence(rm.train.chosen, 0)), 'row 0 is the first chosen');
  t.same(Array.from(rb.ids.subarray(2 * rb.T, 2 * rb.T + rb.lengths[2])), Array.from(sequence(rm.train.rejected, 0)), 'row 2 is the first rejected');

  const ppo = await loadPpoPrompts(ctxFor(dir, [fx('pairs.jsonl')], { split: '1,1,1' }));
  const pb = ppoBatch(ppo.train, [0, 1, 2], ppo.padId);
  for (let r = 0; r < 3; r++) {
    const row = pb.ids.subarray(r * pb.T, (r + 1) * pb.T);
    const pad = pb.T - pb.lengths[r];
    t.same(Array.from(row.subarray(pad)), Array.from(sequence(ppo.train.prompts, r)), `prompt ${r} sits at the right end`);
    t.same(Array.from(pb.mask.subarray(r * pb.T, r * pb.T + pad)), new Array(pad).fill(0), 'left pads are masked');
  }
});

t.test('batch iterator: seeded epochs, and a restored position continues identically', async (t) => {
  const it = new BatchIterator(10, 4, 1234, { epochs: 2 });
  const seen: number[][] = [];
  for (let b = it.next(); b; b = it.next()) seen.push(b);
  t.same(seen.map((b) => b.length), [4, 4, 2, 4, 4, 2]);
  t.same(seen.slice(0, 3).flat().sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'an epoch covers every example once');
  t.same(seen[0], [7, 2, 9, 1], 'epoch 0 is numpy RandomState(1234).shuffle(arange(10))');
  t.notSame(seen.slice(0, 3).flat(), seen.slice(3).flat(), 'each epoch has its own order');

  const a = new BatchIterator(10, 4, 1234, { epochs: 2 });
  a.next(); a.next(); a.next(); a.next();
  const saved = a.state();
  t.same(saved, { epoch: 1, batch: 1 });
  const b = new BatchIterator(10, 4, 1234, { epochs: 2 });
  b.restore(JSON.parse(JSON.stringify(saved)));
  t.same([b.next(), b.next(), b.next()], [seen[4], seen[5], null]);
  t.same(new BatchIterator(10, 4, 1, { dropLast: true }).batchesPerEpoch, 2);
  t.throws(() => b.restore({ epoch: 0, batch: 9 }), /BatchIterator.restore: bad position/);

  // A tail shorter than minLast joins the batch before it; one that is long enough stays apart.
  const merged = new BatchIterator(10, 4, 1234, { epochs: 2, minLast: 3 });
  const m: number[][] = [];
  for (let x = merged.next(); x; x = merged.next()) m.push(x);
  t.same(m.map((x) => x.length), [4, 6, 4, 6]);
  t.same(m, [seen[0], [...seen[1], ...seen[2]], seen[3], [...seen[4], ...seen[5]]], 'the same order, the short batch appended to the one before');
  t.same(new BatchIterator(10, 4, 1, { minLast: 2 }).batchesPerEpoch, 3, 'a tail of 2 with minLast 2 stays a batch');
  t.same(new BatchIterator(3, 4, 1, { minLast: 4 }).batchesPerEpoch, 1, 'a single short batch has nothing to join');
});
