// Reading datasets: JSONL, JSON arrays, Hugging Face parquet folders; bad rows
// named by file and line, skipped or rejected as configured.
import t from 'tap';
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { BadRowError, BadRows } from '../../src/data/rows.js';
import { jsonArrayElements, listDatasetFiles, parseDataFile } from '../../src/data/sources.js';
import { formatAnswer, formatPrompt, formatRow } from '../../src/data/format.js';
import { repoRoot } from '../../src/util/paths.js';

const fx = (...p: string[]) => join(repoRoot, 'test/fixtures/data', ...p);
const parse = (file: string, policy: 'error' | 'skip' = 'error') => {
  const bad = new BadRows(policy);
  return parseDataFile(file, readFileSync(file), bad).then((rows) => ({ rows, bad }));
};

t.test('JSONL in DeepSpeed-Chat local format', async (t) => {
  const { rows } = await parse(fx('pairs.jsonl'));
  t.equal(rows.length, 30);
  t.match(rows[0], { prompt: 'Tell me about the weather (#0).', chosen: 'It is lovely and bright.', rejected: 'It is awful.' });
  t.same(rows[29].origin, { file: fx('pairs.jsonl'), line: 30, unit: 'line' });
});

t.test('JSON array: each element keeps its line', async (t) => {
  const { rows } = await parse(fx('pairs.json'));
  t.equal(rows.length, 12);
  t.equal(rows[0].prompt, 'Tell me about the weather (#100).');
  // json.dump(indent=2): '[' then each element opens on a line, 5 lines each
  t.same(rows.map((r) => r.origin.line).slice(0, 3), [2, 7, 12]);
  t.same(jsonArrayElements('[\n {"a": "],[{"},\n\n [1, [2]] ]').map((e) => e.line), [2, 4]);
});

t.test('a Hugging Face parquet folder (Dahoas/rm-static shape): splits by file name', async (t) => {
  const files = listDatasetFiles(fx('hf-rm-static'));
  t.same(files.map((f) => [f.path.slice(fx('hf-rm-static').length), f.split]), [
    ['/data/test-00000-of-00001.parquet', 'test'],
    ['/data/train-00000-of-00001.parquet', 'train'],
  ], 'README.md is not data');
  const { rows } = await parse(files[1].path);
  t.equal(rows.length, 40);
  t.equal(rows[0].prompt, '\n\nHuman: Tell me about the weather (#300).\n\nAssistant:');
  t.equal(rows[0].chosen, ' It is lovely and bright.');
  t.same(rows[39].origin, { file: files[1].path, line: 40, unit: 'row' });
  t.equal(formatRow(rows[0], { promptTemplate: 'Human: {prompt} Assistant:', endOfConversationToken: '<|endoftext|>' }).prompt,
    rows[0].prompt, 'an already formatted prompt is left alone');
});

t.test('bad rows: the first one stops the load naming file and line', async (t) => {
  await t.rejects(parse(fx('bad.jsonl')), { name: 'BadRowError', message: `${fx('bad.jsonl')}:3: not valid JSON` });
  await t.rejects(parse(fx('bad.json')), { message: `${fx('bad.json')}:3: missing 'chosen'` });
});

t.test('bad rows: skipped and reported with file and line', async (t) => {
  const { rows, bad } = await parse(fx('bad.jsonl'), 'skip');
  t.same(rows.map((r) => r.origin.line), [1, 2, 4, 7, 9, 11]);
  t.equal(rows[4].rejected, null, 'a row without rejected is kept (usable for SFT and PPO)');
  const f = fx('bad.jsonl');
  t.same(bad.skipped.map((e) => e.message.replace(/ \(.*\)$/, '')), [
    `${f}:3: not valid JSON`,
    `${f}:5: missing 'prompt'`,
    `${f}:8: 'prompt' must be a string, got number`,
    `${f}:10: expected an object with prompt/chosen/rejected, got a list`,
  ]);
  t.match(bad.summary(2), /skipped 4 bad row\(s\):\n.*:3: .*\n.*:5: .*\n  \.\.\. and 2 more/);
});

t.test('broken files and folders are clear errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-sources-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.throws(() => listDatasetFiles(join(dir, 'nope.jsonl')), /dataset '.*nope.jsonl' does not exist/);
  mkdirSync(join(dir, 'empty'));
  t.throws(() => listDatasetFiles(join(dir, 'empty')), /holds no .parquet, .json or .jsonl files/);
  writeFileSync(join(dir, 'x.txt'), 'hi');
  t.throws(() => listDatasetFiles(join(dir, 'x.txt')), /expected a .jsonl, .json or .parquet file/);
  writeFileSync(join(dir, 'junk.parquet'), 'not parquet at all');
  await t.rejects(parse(join(dir, 'junk.parquet')), /junk.parquet: not a readable parquet file/);
  await t.rejects(parse(fx('no-prompt.parquet')), /no-prompt.parquet: parquet file has no 'prompt' column \(columns: question, chosen\)/);
  cpSync(fx('hf-rm-static'), join(dir, 'hf'), { recursive: true });
  writeFileSync(join(dir, 'hf', 'data', 'validation.jsonl'), '{"question": "q"}\n');
  writeFileSync(join(dir, 'hf', 'dataset_infos.json'), '{"default": {}}');
  const files = listDatasetFiles(join(dir, 'hf'));
  t.equal(files.find((f) => f.path.endsWith('validation.jsonl'))?.split, 'test');
  t.equal(files.length, 3, 'dataset_infos.json is metadata, not rows');
  await t.rejects(parse(join(dir, 'hf', 'data', 'validation.jsonl')), new BadRowError({ file: join(dir, 'hf', 'data', 'validation.jsonl'), line: 1, unit: 'line' }, "missing 'prompt'"));
});

t.test('formatting: template, answer spacing and end-of-conversation token', async (t) => {
  t.equal(formatPrompt('  What is up?  ', 'Human: {prompt} Assistant:'), 'Human: What is up? Assistant:');
  t.equal(formatPrompt('\n\nHuman: hi\n\nAssistant: ', 'Human: {prompt} Assistant:'), '\n\nHuman: hi\n\nAssistant:');
  t.equal(formatAnswer('Fine.', '<|endoftext|>'), ' Fine.<|endoftext|>');
  t.equal(formatAnswer(' Fine. \n', '<|endoftext|>'), ' Fine.<|endoftext|>');
});
