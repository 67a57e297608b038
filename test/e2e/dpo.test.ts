// `quartet train` with steps [sft, dpo] through real role processes on the
// tiny world of test/e2e/tiny-run.ts: the SFT output feeds the DPO step as
// both the actor and the frozen reference; on held-out pairs the implicit
// reward beta * (logp - ref_logp) of the chosen answer comes to beat the
// rejected one's (margin 0 and loss log 2 before training, when the two
// models are the same), the DPO loss falls below log 2, and the actor folder it writes
// loads with its tokenizer; `quartet dpo` runs the step alone. dpo with rm or
// ppo is a configuration error.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadModel } from '../../src/models/checkpoint.js';
import { quartet } from './quartet.js';
import { makeTinyRun } from './tiny-run.js';

// Seen on the 2-core development machine (seed 1 of this world, 70 held-out
// pairs): held-out accuracy 1.000 and loss 0.087 after 54 DPO steps. Chance
// is 0.5; the bound leaves room for other kernels' rounding, not for a broken step.
const MIN_ACCURACY = 0.7;

const config = {
  seed: 1,
  steps: ['sft', 'dpo'],
  data: { maxPromptLen: 16, maxAnswerLen: 14, workers: 1, split: '3,7,0', evalFraction: 0.2 },
  actor: { devices: ['cpu:0'], threads: 1, maxRestarts: 0 },
  reference: { devices: ['cpu:1'], threads: 1, maxRestarts: 0 },
  sft: { lr: 3e-3, epochs: 4, batchSize: 16, dropout: false },
  dpo: { lr: 1e-3, schedule: 'constant', beta: 0.1, epochs: 3, batchSize: 16 },
};

interface Row { phase: string; step: number; [k: string]: unknown }

t.test('quartet train --steps sft,dpo: DPO raises the held-out preference for chosen answers and writes a loadable actor', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'q-e2e-dpo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const world = makeTinyRun(join(dir, 'world'), { rows: 500, seed: 1 });
  const cfgFile = join(dir, 'dpo.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const out = join(dir, 'run');

  const r = await quartet(t, ['train', '--config', cfgFile, '--actor-model', world.model, '--data', world.data, '--output-dir', out]);
  t.equal(r.code, 0, `quartet train exits 0 (stderr tail: ${r.stderr.slice(-1500)})`);
  t.match(r.stdout, /dpo \d+ steps, eval reward accuracy [\d.]+ -> [\d.]+ \(.*dpo\)/, `the summary line names the DPO step:\n${r.stdout.slice(-400)}`);
  t.notOk(existsSync(join(out, 'logs', 'reward-0.log')), 'no reward model is started');

  const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
  const dpo = rows.filter((x) => x.phase === 'dpo');
  const evals = dpo.filter((x) => typeof x.eval_accuracy === 'number');
  t.equal(evals[0].step, 0, 'evaluated before training');
  // Before training the policy is its reference: the implicit rewards are 0 up to rounding (the
  // actor and the coordinator sum the same log-probs in different orders), so the loss is log 2.
  t.ok(Math.abs(evals[0].eval_margin as number) < 1e-4, `implicit reward margin before training is 0: ${evals[0].eval_margin}`);
  t.ok(Math.abs((evals[0].eval_loss as number) - Math.LN2) < 1e-4, `and the loss is log 2: ${evals[0].eval_loss}`);
  const last = evals.at(-1)!;
  t.ok((last.eval_accuracy as number) >= MIN_ACCURACY, `held-out implicit-reward accuracy after DPO ${(last.eval_accuracy as number).toFixed(3)} >= ${MIN_ACCURACY}`);
  t.ok((last.eval_loss as number) < Math.LN2 - 0.05, `held-out DPO loss falls below log 2: ${(last.eval_loss as number).toFixed(4)}`);
  t.ok((last.eval_margin as number) > 0, `held-out reward margin is positive: ${(last.eval_margin as number).toFixed(4)}`);
  for (const k of ['loss', 'accuracy', 'chosen_reward', 'rejected_reward', 'margin', 'grad_norm', 'lr', 'pairs_per_s'])
    t.type(dpo[1][k], 'number', `DPO figure ${k}`);

  const m = loadModel(join(out, 'dpo'));
  t.equal(m.cfg.modelType, 'gpt2', 'the DPO actor loads');
  t.equal(m.valueHead, null, 'without a value head');
  m.dispose();
  t.ok(existsSync(join(out, 'dpo', 'tokenizer.json')), 'with the tokenizer of its source');
  t.match(readFileSync(join(out, 'state.json'), 'utf8'), /"dpo"/, 'the run state marks dpo done');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { dpo?: { eval_accuracy?: number } };
  t.equal(summary.dpo?.eval_accuracy, Number((last.eval_accuracy as number).toFixed(4)), 'summary.json holds the final held-out accuracy');
  t.match(readFileSync(join(out, 'report.html'), 'utf8'), /DPO implicit-reward accuracy/, 'the report charts the DPO accuracy');

  // The step alone, from the SFT output, as `quartet dpo`.
  const alone = join(dir, 'alone');
  const d = await quartet(t, ['dpo', '--config', cfgFile, '--actor-model', join(out, 'sft'), '--data', world.data, '--output-dir', alone, '--dpo.maxSteps=2']);
  t.equal(d.code, 0, `quartet dpo exits 0 (stderr tail: ${d.stderr.slice(-800)})`);
  t.match(d.stdout, /dpo 2 steps/, 'two steps, as asked');
  t.ok(existsSync(join(alone, 'dpo', 'model.safetensors')), 'the actor is saved');
  t.notOk(existsSync(join(alone, 'sft')), 'no SFT is run');
});

t.test('quartet train: dpo with rm is a configuration error naming steps', async (t) => {
  const r = await quartet(t, ['train', '--actor-model', 'nowhere', '--data', 'nothing.jsonl', '--steps', 'sft,rm,dpo']);
  t.equal(r.code, 1);
  t.match(r.stderr, /steps: 'dpo' replaces the reward model and PPO/);
});
