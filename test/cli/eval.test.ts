// `quartet eval prompts` prints both models' answers, equal to generate() on
// the formatted prompts; `quartet eval rm` scores pairs as a direct
// computation does (each sequence alone, unpadded, value at its last token),
// with accuracy 1 on pairs ordered by a value head set by hand, and refuses a
// folder without a value head.
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { answerText, decodeIds, stopMarkers } from '../../src/chat/answer.js';
import { loadModel, saveModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';
import { initModelFolder } from '../../src/models/init.js';
import { QTokenizer } from '../../src/models/tokenizer.js';
import { Rng, fromData, fromI32, noGrad, param } from '../../src/tensor/index.js';
import { repoRoot } from '../../src/util/paths.js';

const run = promisify(execFile);
const quartet = (...args: string[]) => run(process.execPath, [join(repoRoot, 'bin', 'quartet.js'), 'eval', ...args], { cwd: repoRoot });

const root = mkdtempSync(join(tmpdir(), 'quartet-eval-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const EOT = '<|endoftext|>';
const tiny = { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 400, maxPositions: 128 };

t.test('eval prompts: both answers, as generate() gives them', async (t) => {
  const base = join(root, 'base'), tuned = join(root, 'tuned');
  initModelFolder(base, { ...tiny, seed: 1 });
  initModelFolder(tuned, { ...tiny, seed: 2 });
  const file = join(root, 'prompts.txt');
  writeFileSync(file, 'Tell me a joke.\n\nWhat is the sun?\n');
  const N = 5;
  const { stdout } = await quartet('prompts', '--baseline', base, '--finetuned', tuned, '--prompts', file, '--max-new-tokens', String(N), '--json');
  const got = JSON.parse(stdout) as { prompt: string; baseline: string; finetuned: string }[];
  const expected = (dir: string, prompt: string) => {
    const tok = QTokenizer.load(dir);
    const model = loadModel(dir);
    const ids = tok.encode(`Human: ${prompt} Assistant:`, { addSpecialTokens: false });
    const g = generate(model, Int32Array.from(ids), null, 1, ids.length, { maxNewTokens: N, eosTokenId: tok.eosId });
    model.dispose();
    const out = Array.from(g.sequences.subarray(ids.length)).filter((id) => id !== tok.eosId);
    return answerText(decodeIds(tok, out), stopMarkers('Human: {prompt} Assistant:', EOT)).text;
  };
  t.same(got.map((r) => r.prompt), ['Tell me a joke.', 'What is the sun?']);
  for (const r of got) {
    t.equal(r.baseline, expected(base, r.prompt), `baseline answer to '${r.prompt}' (batched with left padding) equals generate() alone`);
    t.equal(r.finetuned, expected(tuned, r.prompt), `finetuned answer to '${r.prompt}'`);
  }
  const text = await quartet('prompts', '--baseline', base, '--finetuned', tuned, '--max-new-tokens', '2', '--batch-size', '4');
  t.equal(text.stdout.match(/==========Baseline: Greedy=========/g)?.length, 6, 'six built-in prompts, a baseline answer each');
  t.equal(text.stdout.match(/==========finetune: Greedy=========/g)?.length, 6);
  t.match(text.stdout, /prompt 4: Who was president of the United States in 1955\?/);
  const bad = join(root, 'bad.jsonl');
  writeFileSync(bad, '{"prompt": "fine"}\n{"text": "no prompt"}\n');
  await t.rejects(quartet('prompts', '--baseline', base, '--finetuned', tuned, '--prompts', bad), /bad\.jsonl:2: expected an object with a non-empty string 'prompt'/);
  await t.rejects(quartet('prompts', '--baseline', base), /needs --baseline and --finetuned/);
  const fitted = await quartet('prompts', '--baseline', base, '--finetuned', tuned, '--prompts', file, '--json');
  t.match(fitted.stderr, /answers of at most 64 tokens, half the model's 128 positions/, 'the default 100 shrinks to fit a 128-position model');
  await t.rejects(quartet('prompts', '--baseline', join(root, 'nope'), '--finetuned', tuned), /--baseline \S*nope does not exist/);
  await t.rejects(quartet('prompts', '--baseline', base, '--finetuned', tuned, '--max-new-tokens', '128'), /--max-new-tokens 128 leaves no room for a prompt in the model's 128 positions/);
});

t.test('eval rm: accuracy and mean scores of a hand-set value head, checked directly', async (t) => {
  const dir = join(root, 'rm');
  initModelFolder(dir, { ...tiny, seed: 4 });
  const tok = QTokenizer.load(dir);
  const model = loadModel(dir);
  // A value head with weights far above the init's, so scores spread well beyond rounding.
  const head = new Float32Array(model.cfg.embedDim);
  new Rng(9).fillNormal(head, 0, 1);
  model.valueHead = param(fromData(head, [1, model.cfg.embedDim]));
  saveModel(model, dir);
  const score = (prompt: string, answer: string): number => noGrad(() => {
    const ids = tok.encode(`Human: ${prompt} Assistant: ${answer}${EOT}`, { addSpecialTokens: false });
    const v = model.values(fromI32(ids, [1, ids.length]));
    const s = v.f32[ids.length - 1];
    v.dispose();
    return s;
  });
  // Answers of different lengths, so pairs are padded in a batch; each pair ordered by the head's own scores.
  const answers = ['yes', 'no thanks', 'a much longer answer here', 'ok', 'maybe later today', 'sure', 'never', 'good idea indeed'];
  const rows: string[] = [];
  let chosenSum = 0, rejectedSum = 0;
  for (let i = 0; i < 7; i++) {
    const prompt = `question number ${i}`;
    const a = answers[i], b = answers[(i + 3) % answers.length];
    const [sa, sb] = [score(prompt, a), score(prompt, b)];
    t.not(sa, sb);
    const [chosen, rejected] = sa > sb ? [a, b] : [b, a];
    chosenSum += Math.max(sa, sb);
    rejectedSum += Math.min(sa, sb);
    rows.push(JSON.stringify({ prompt, chosen, rejected }));
  }
  model.dispose();
  const data = join(root, 'pairs.jsonl');
  writeFileSync(data, rows.join('\n') + '\n' + JSON.stringify({ prompt: 'sft only', chosen: 'no rejected here' }) + '\n');
  const { stdout, stderr } = await quartet('rm', '--model', dir, '--data', data, '--batch-size', '3', '--json');
  const r = JSON.parse(stdout) as { pairs: number; accuracy: number; chosenMean: number; rejectedMean: number; withoutRejected: number };
  t.equal(r.pairs, 7);
  t.equal(r.withoutRejected, 1);
  t.match(stderr, /left out 1 row\(s\) without a rejected answer/);
  t.equal(r.accuracy, 1, 'every pair ordered by the head is ranked right');
  // Padding, batching and positions must not change a score: agreement to float32 rounding of sums of ~30 products.
  t.ok(Math.abs(r.chosenMean - chosenSum / 7) < 1e-4, `chosen mean ${r.chosenMean} vs direct ${chosenSum / 7}`);
  t.ok(Math.abs(r.rejectedMean - rejectedSum / 7) < 1e-4, `rejected mean ${r.rejectedMean} vs direct ${rejectedSum / 7}`);
  // The same pairs swapped: accuracy 0 and the means trade places.
  const swapped = join(root, 'swapped.jsonl');
  writeFileSync(swapped, rows.map((l) => {
    const o = JSON.parse(l) as { prompt: string; chosen: string; rejected: string };
    return JSON.stringify({ prompt: o.prompt, chosen: o.rejected, rejected: o.chosen });
  }).join('\n'));
  const s = JSON.parse((await quartet('rm', '--model', dir, '--data', swapped, '--json')).stdout) as { accuracy: number; chosenMean: number };
  t.equal(s.accuracy, 0);
  t.ok(Math.abs(s.chosenMean - rejectedSum / 7) < 1e-4);
  // A dataset folder: --split picks its test files.
  const folder = join(root, 'hub', 'data');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'train-00000-of-00001.jsonl'), rows.slice(0, 4).join('\n'));
  writeFileSync(join(folder, 'test-00000-of-00001.jsonl'), rows.slice(4).join('\n'));
  const split = JSON.parse((await quartet('rm', '--model', dir, '--data', join(root, 'hub'), '--split', 'test', '--json')).stdout) as { pairs: number; accuracy: number };
  t.same([split.pairs, split.accuracy], [3, 1], 'the three test pairs only');
  const text = await quartet('rm', '--model', dir, '--data', data);
  t.match(text.stdout, /pairs +7\naccuracy +1\.0000\nchosen mean +-?\d+\.\d{4}\nrejected mean +-?\d+\.\d{4}\n/);
});

t.test('eval rm: errors name what is wrong', async (t) => {
  const plain = join(root, 'plain');
  initModelFolder(plain, { ...tiny, seed: 5 });
  const data = join(root, 'one.jsonl');
  writeFileSync(data, '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p", "chosen": 3}\n');
  await t.rejects(quartet('rm', '--model', plain, '--data', data, '--skip-bad-rows'), /has no v_head\.weight, so it is not a trained reward model/);
  await t.rejects(quartet('rm', '--model', plain, '--data', data), /one\.jsonl:2: 'chosen' must be a string/);
  await t.rejects(quartet('rm', '--model', plain, '--data', join(root, 'none.jsonl')), /does not exist/);
  await t.rejects(quartet('rm', '--model', plain), /needs --model and --data/);
  await t.rejects(quartet('rm', '--model', join(root, 'nope'), '--data', data), /eval rm: --model \S*nope does not exist/);
  await t.rejects(quartet('rm', '--model', plain, '--data', data, '--split', 'dev'), /--split must be 'train' or 'test'/);
  await t.rejects(quartet('nonsense'), /unknown evaluation 'nonsense'/);
  await t.rejects(quartet(), /say which evaluation/);
  const help = await quartet('rm', '--help');
  t.match(help.stdout, /Usage: npx quartet eval prompts/);
});
