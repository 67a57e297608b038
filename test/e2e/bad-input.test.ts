// Bad input through the command line, as a user meets it: each is a clear
// error naming the key (and file), the data file and line, or the model
// folder and what in it is unsupported, and no role process is left behind.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { quartet } from './quartet.js';
import { makeTinyRun } from './tiny-run.js';

const dir = mkdtempSync(join(tmpdir(), 'q-bad-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const world = makeTinyRun(join(dir, 'world'), { rows: 40, seed: 2 });
const out = join(dir, 'out');

t.test('a config file with an unknown key or a wrong type names the key and the file', async (t) => {
  const unknown = join(dir, 'unknown.json');
  writeFileSync(unknown, JSON.stringify({ ppo: { clipRnage: 0.3 } }));
  const r1 = await quartet(t, ['train', '--config', unknown, '--actor-model', world.model, '--data', world.data, '--output-dir', out]);
  t.equal(r1.code, 1);
  t.match(r1.stderr, unknown, 'names the file');
  t.match(r1.stderr, /ppo\.clipRnage: unknown key \(did you mean 'ppo\.clipRange'\?\)/);

  const wrong = join(dir, 'wrong.json');
  writeFileSync(wrong, JSON.stringify({ actor: { lr: 'fast' } }));
  const r2 = await quartet(t, ['sft', '--config', wrong, '--actor-model', world.model, '--data', world.data, '--output-dir', out]);
  t.equal(r2.code, 1);
  t.match(r2.stderr, /actor\.lr: expected number, got the string "fast"/);

  const r3 = await quartet(t, ['ppo', '--ppo.klCtll=0.2', '--output-dir', out]);
  t.equal(r3.code, 1);
  t.match(r3.stderr, /--ppo\.klCtll: unknown option \(did you mean '--ppo\.klCtl'\?\)/);
});

t.test('a dataset row without a prompt names the file and line', async (t) => {
  const bad = join(dir, 'bad.jsonl');
  const good = readFileSync(world.data, 'utf8').trim().split('\n').slice(0, 2);
  writeFileSync(bad, [...good, JSON.stringify({ chosen: ' The cat is good.', rejected: ' The cat is bad.' }), good[0]].join('\n') + '\n');
  const r = await quartet(t, ['sft', '--actor-model', world.model, '--data', bad, '--output-dir', join(dir, 'out-row')]);
  t.equal(r.code, 1);
  t.match(r.stderr, `${bad}:3: missing 'prompt'`);
});

t.test('a checkpoint folder of an unsupported family names the key, the folder and the family', async (t) => {
  const bert = join(dir, 'bert');
  cpSync(world.model, bert, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(bert, 'config.json'), 'utf8'));
  writeFileSync(join(bert, 'config.json'), JSON.stringify({ ...cfg, model_type: 'bert' }));
  const r = await quartet(t, ['ppo', '--actor-model', bert, '--reward-model', world.model, '--data', world.data, '--output-dir', join(dir, 'out-bert')]);
  t.equal(r.code, 1);
  t.match(r.stderr, `ppo: actor.model = '${bert}'`);
  t.match(r.stderr, /model_type 'bert' is not supported \(supported: .*gpt2/);

  const r2 = await quartet(t, ['ppo', '--reward-model', world.model, '--data', world.data, '--output-dir', join(dir, 'out-none')]);
  t.equal(r2.code, 1);
  t.match(r2.stderr, /ppo: actor\.model is not set; give the SFT model \(--actor-model DIR\) or run sft before it/);
});

t.test('a run that cannot work fails before SFT starts, names the key, and leaves no run folder', async (t) => {
  const fresh = join(dir, 'out-early');
  const r = await quartet(t, ['train', '--actor-model', world.model, '--reward-model', world.model, '--data', world.data, '--output-dir', fresh, '--ppo.maxNewTokens=256'], { timeoutMs: 60_000 });
  t.equal(r.code, 1);
  t.match(r.stderr, /ppo\.maxNewTokens = 256 leaves no room in the 64 positions of actor\.model '[^']*model' \(gpt2\) for data\.maxPromptLen \(at least 1\); lower ppo\.maxNewTokens/);
  t.notMatch(r.stdout + r.stderr, /sft step|sft: /, 'SFT never started');
  t.notOk(existsSync(fresh), 'no empty run folder is left behind');

  const missing = join(dir, 'no-rm');
  const r2 = await quartet(t, ['train', '--actor-model', world.model, '--reward-model', missing, '--data', world.data, '--output-dir', fresh], { timeoutMs: 60_000 });
  t.equal(r2.code, 1);
  t.match(r2.stderr, `rm: reward.model = '${missing}' does not exist`);
  t.notOk(existsSync(fresh));

  const fitted = await quartet(t, ['sft', '--actor-model', world.model, '--data', world.data, '--output-dir', fresh, '--sft.maxSteps=1', '--data.workers=1'], { timeoutMs: 120_000 });
  t.equal(fitted.code, 0, fitted.stderr);
  t.match(fitted.stdout, /note: data\.maxPromptLen 256 -> 32, data\.maxAnswerLen 256 -> 32 \(defaults\) to fit the 64 positions/, 'defaults fit the model, with a note');
  t.match(readFileSync(join(fresh, 'logs', 'train.log'), 'utf8'), /note: data\.maxPromptLen/);
  t.ok(existsSync(join(fresh, 'actor', 'config.json')), 'the final actor is at <run>/actor');
  t.match(fitted.stdout, /Final models \(Hugging Face folders\):\n  actor +\S*actor\nTalk to the actor: npx quartet chat --model \S*actor/);
  const again = await quartet(t, ['ppo', '--reward-model', missing, '--data', world.data, '--output-dir', fresh], { timeoutMs: 60_000 });
  t.equal(again.code, 1);
  t.match(readFileSync(join(fresh, 'logs', 'train.log'), 'utf8'), /failed: the run cannot start:\n  ppo: reward\.model = '[^']*no-rm' does not exist/, 'in an existing run directory the failure is in train.log too');
});

t.test('--help lists the options and every config key; stray words are refused', async (t) => {
  const r = await quartet(t, ['train', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /Usage: npx quartet train/);
  t.match(r.stdout, /--resume/);
  t.match(r.stdout, /--ppo\.klCtl <number>/);
  t.match(r.stdout, /--critic\.devices <list of strings>/);
  const sft = await quartet(t, ['sft', '--help']);
  t.equal(sft.code, 0);
  t.match(sft.stdout, /--sft\.lr </);
  t.notMatch(sft.stdout, /--ppo\.|--reward-model|--critic\./, 'sft --help lists only the keys sft uses');
  t.match((await quartet(t, ['sft', '--help-all'])).stdout, /--ppo\.klCtl </, '--help-all lists every key');
  const s = await quartet(t, ['sft', 'extra', '--actor-model', world.model]);
  t.equal(s.code, 2);
  t.match(s.stderr, /unexpected argument 'extra'/);
});
