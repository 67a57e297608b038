import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, prepareDemoData } from '../../src/demo/data.js';

const small = { vocabSize: 1024, sftExamples: 40, rmPrompts: 30, evalPrompts: 16 };

t.test('demo data is made once, then read back from the folder', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-demo-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const a = prepareDemoData(dir, small, (l) => lines.push(l));
  t.equal(a.cached, false);
  t.equal(lines.length, 3, 'one log line per stage');
  for (const f of ['tokenizer/tokenizer.json', 'tokenizer/tokenizer_config.json', 'pretrain.jsonl', 'sft.jsonl', 'rm_prompts.jsonl', 'eval_prompts.jsonl', 'manifest.json']) {
    t.ok(existsSync(join(dir, f)), f);
  }
  t.equal(a.sft.length, 40);
  t.equal(a.rm.length, 30);
  t.equal(a.eval.length, 16);
  t.ok(a.pretrainTexts.length > 400);
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer/tokenizer_config.json'), 'utf8'));
  t.equal(config.model_max_length, 64);
  t.equal(config.eos_token, '<|endoftext|>');
  const tk = loadTokenizer(a.tokenizerDir);
  t.equal(tk.get_vocab(true).size, 1024);
  const full = a.sft[0].prompt + a.sft[0].answer;
  t.equal(tk.decode(tk.encode(full).ids), full);
  t.ok(a.sft.every((e) => tk.encode(e.prompt).ids.length + tk.encode(e.answer).ids.length + 1 <= 64), 'prompt + answer + end token fit the context');

  for (const f of ['sft.jsonl', 'rm_prompts.jsonl', 'eval_prompts.jsonl']) {
    const rows = readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    t.ok(rows.every((r) => typeof r.prompt === 'string' && typeof r.chosen === 'string' && r.chosen.startsWith(' ')), `${f}: DeepSpeed-Chat prompt/chosen rows`);
  }
  const b = prepareDemoData(dir, small);
  t.equal(b.cached, true);
  t.same({ ...b, cached: false }, a, 'read back exactly');
  const c = prepareDemoData(dir, { ...small, evalPrompts: 8 });
  t.equal(c.cached, false, 'other options remake the folder');
  t.equal(c.eval.length, 8);
});

t.test('bad options are named', async (t) => {
  t.throws(() => prepareDemoData('/nonexistent', { vocabsize: 10 } as never), /unknown option 'vocabsize'/);
  t.throws(() => prepareDemoData('/nonexistent', { heldOutFraction: 0 }), /option 'heldOutFraction' is invalid: 0/);
  t.throws(() => prepareDemoData('/nonexistent', { contextLength: 48 }), /\+ 1 end token exceeds contextLength \(48\)/);
});
