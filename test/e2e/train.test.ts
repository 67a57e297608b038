// `quartet train` end to end with four real role processes on a tiny world
// (test/e2e/tiny-run.ts): SFT loss falls, the reward model beats chance on
// held-out pairs, PPO raises the reward while the KL stays bounded, the
// outputs load and generate; then the same run killed in the middle of PPO and
// resumed with --resume ends with the same steps, on the same batches, with
// the same figures (the run is deterministic for a seed).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadModel } from '../../src/models/checkpoint.js';
import { quartet } from './quartet.js';
import { makeTinyRun, positiveShare } from './tiny-run.js';

const PPO_STEPS = 16;

// Chosen from runs on a loaded 2-core machine, seeds 1-3 of this world: the PPO
// reward rose from about 1 (mean of steps 1-3) to about 3.5-4.3 (steps 13-16),
// with a KL of at most 10 nats per answer by step 16. The margins leave room.
const MIN_REWARD_RISE = 1.0;
const MAX_KL = 20;

const config = {
  seed: 1,
  data: { maxPromptLen: 16, maxAnswerLen: 14, workers: 1 },
  actor: { devices: ['cpu:0'], threads: 1, lr: 3e-4, warmup: 0, schedule: 'constant', maxRestarts: 0 },
  critic: { devices: ['cpu:1'], threads: 1, lr: 1e-3, warmup: 0, schedule: 'constant', maxRestarts: 0 },
  reference: { devices: ['cpu:0'], threads: 1, maxRestarts: 0 },
  reward: { devices: ['cpu:1'], threads: 1, lr: 3e-3, weightDecay: 0, maxRestarts: 0 },
  sft: { lr: 3e-3, epochs: 8, batchSize: 16, dropout: false },
  rm: { epochs: 2, batchSize: 16 },
  ppo: { maxSteps: PPO_STEPS, epochs: 5, promptBatchSize: 32, trainBatchSize: 16, maxNewTokens: 14, saveEvery: 4 },
};

interface Row { phase: string; step: number; [k: string]: unknown }

function metrics(runDir: string): Row[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

t.test('quartet train: sft -> rm -> ppo through role processes, then kill mid-PPO and --resume', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'q-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const world = makeTinyRun(join(dir, 'world'), { rows: 600, seed: 1 });
  const cfgFile = join(dir, 'e2e.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const args = (out: string) => ['train', '--config', cfgFile, '--actor-model', world.model, '--reward-model', world.model, '--data', world.data, '--output-dir', out];

  const full = join(dir, 'full');
  const r = await quartet(t, args(full));
  t.equal(r.code, 0, `quartet train exits 0 (stderr tail: ${r.stderr.slice(-1500)})`);
  t.match(r.stdout, /\n  ppo\.maxSteps = 16\n/, 'the config is printed as its changes from the defaults');
  t.notMatch(r.stdout, /ppo\.klCtl = /, 'keys left at their defaults are not printed');
  t.match(r.stdout, /Final models \(Hugging Face folders\):\n  actor +\S*full\/actor\n  critic +\S*full\/critic\n  reward +\S*full\/reward\nTalk to the actor: npx quartet chat --model \S*full\/actor/, 'the end names the final models and the chat command');
  t.ok(existsSync(join(full, 'config.json')), 'resolved config saved');
  const rows = metrics(full);

  const sft = rows.filter((x) => x.phase === 'sft' && typeof x.eval_loss === 'number');
  const sftBefore = sft[0].eval_loss as number, sftAfter = sft.at(-1)!.eval_loss as number;
  t.equal(sft[0].step, 0, 'SFT evaluated before training');
  t.ok(sftAfter < 0.6 * sftBefore, `SFT held-out loss falls: ${sftBefore.toFixed(3)} -> ${sftAfter.toFixed(3)}`);

  const rmAcc = rows.filter((x) => x.phase === 'rm' && typeof x.eval_accuracy === 'number').at(-1)!.eval_accuracy as number;
  t.ok(rmAcc >= 0.8, `RM held-out accuracy ${rmAcc.toFixed(3)} is clearly above chance (0.5)`);

  const ppo = rows.filter((x) => x.phase === 'ppo');
  t.same(ppo.map((x) => x.step), Array.from({ length: PPO_STEPS }, (_, i) => i + 1), 'one metrics line per PPO step');
  const rewards = ppo.map((x) => x.reward as number);
  const start = mean(rewards.slice(0, 3)), end = mean(rewards.slice(-4));
  t.ok(end - start > MIN_REWARD_RISE, `PPO raises the mean reward: ${start.toFixed(3)} (steps 1-3) -> ${end.toFixed(3)} (last 4), margin ${MIN_REWARD_RISE}`);
  const kl = ppo.map((x) => x.kl as number);
  t.ok(kl.every((k) => Number.isFinite(k) && k < MAX_KL), `KL stays bounded (< ${MAX_KL} nats per answer): max ${Math.max(...kl).toFixed(2)}`);
  for (const k of ['policy_loss', 'value_loss', 'clip_frac', 'time_generate', 'time_experience', 'time_train', 'tokens_per_s'])
    t.type(ppo[0][k], 'number', `PPO figure ${k}`);

  for (const sub of ['sft', 'rm', 'ppo/actor', 'ppo/critic']) {
    const m = loadModel(join(full, sub));
    t.equal(m.cfg.modelType, 'gpt2', `${sub} loads`);
    t.equal(m.valueHead !== null, sub === 'rm' || sub === 'ppo/critic', `${sub}: value head only on the reward model and critic`);
    m.dispose();
  }
  const gen = await quartet(t, ['generate', '--model', join(full, 'ppo/actor'), '--prompt', 'Human: Tell me about the cat. Assistant:', '--max-new-tokens', '12']);
  t.equal(gen.code, 0, `quartet generate answers with the PPO actor: ${gen.stdout.trim()} ${gen.stderr.slice(-500)}`);
  t.match(gen.stdout, /\S/, 'a non-empty answer');
  // The property the preference data rewards (the share of positive words), on answers sampled from
  // the SFT and the PPO actors: it rose in every run tried (e.g. 0.73 -> 0.95, 0.61 -> 0.93).
  const nouns = ['cat', 'dog', 'house', 'tree', 'car', 'river', 'book', 'song', 'city', 'garden', 'road', 'lamp'];
  const sampled = async (model: string) => {
    const prompts = [...nouns, ...nouns].flatMap((n) => ['--prompt', `Human: Tell me about the ${n}. Assistant:`]);
    const g = await quartet(t, ['generate', '--model', model, ...prompts, '--max-new-tokens', '14', '--temperature', '1', '--seed', '5', '--json']);
    t.equal(g.code, 0, `quartet generate --json on ${model}`);
    const texts = (JSON.parse(g.stdout) as { choices: { text: string }[] }).choices.map((c) => c.text);
    return mean(texts.map(positiveShare));
  };
  const goldSft = await sampled(join(full, 'sft')), goldPpo = await sampled(join(full, 'ppo/actor'));
  t.ok(goldPpo > goldSft, `the rewarded property rises from the SFT to the PPO actor: positive share ${goldSft.toFixed(3)} -> ${goldPpo.toFixed(3)}`);

  const chat = await quartet(t, ['chat', '--model', join(full, 'ppo/actor'), '--max-new-tokens', '14'], { input: 'Tell me about the cat.\nTell me about the dog.\nquit\n' });
  t.equal(chat.code, 0, `quartet chat exits 0 (stderr: ${chat.stderr.slice(-500)})`);
  const answers = chat.stdout.split('\n').filter((l) => l.startsWith('Assistant:'));
  t.equal(answers.length, 2, `quartet chat answers a scripted two-round conversation:\n${chat.stdout}`);
  t.ok(answers.every((a) => /\w/.test(a.slice('Assistant:'.length))), 'each answer has words');
  t.ok(existsSync(join(full, 'report.html')), 'report written');

  // Step 3 alone, critic-free (GRPO) and with the overlap schedule, from the outputs of steps 1 and 2.
  const grpo = join(dir, 'grpo');
  const g = await quartet(t, ['ppo', '--config', cfgFile, '--actor-model', join(full, 'sft'), '--reward-model', join(full, 'rm'), '--data', world.data,
    '--output-dir', grpo, '--ppo.algorithm', 'grpo', '--ppo.groupSize', '4', '--ppo.promptBatchSize', '8', '--ppo.maxSteps', '3', '--ppo.overlap']);
  t.equal(g.code, 0, `quartet ppo --ppo.algorithm grpo --ppo.overlap exits 0 (stderr tail: ${g.stderr.slice(-1500)})`);
  const grpoRows = metrics(grpo).filter((x) => x.phase === 'ppo');
  t.same(grpoRows.map((x) => x.samples), [32, 32, 32], 'GRPO: 8 prompts x 4 answers a step, none dropped');
  t.notOk(existsSync(join(grpo, 'logs', 'critic-0.log')), 'GRPO starts no critic');

  // The same run, killed (SIGKILL, no chance to clean up) during PPO step 10 (after the checkpoint of step 8), then resumed.
  const cut = join(dir, 'cut');
  const killed = await quartet(t, args(cut), { killOn: /ppo step 9\/16/ });
  t.equal(killed.signal, 'SIGKILL', 'the first attempt was killed mid-PPO');
  t.ok(existsSync(join(cut, 'ppo/checkpoints/step-8/state.json')), 'the checkpoint of step 8 was complete');
  const resumed = await quartet(t, ['train', '--output-dir', cut, '--resume']);
  t.equal(resumed.code, 0, `--resume finishes (stderr tail: ${resumed.stderr.slice(-1500)})`);
  t.match(resumed.stdout, /sft: done in an earlier run/);
  t.match(resumed.stdout, /ppo: resumed from .*step-8 after step 8/);
  const again = metrics(cut).filter((x) => x.phase === 'ppo');
  t.same(again.map((x) => x.step), ppo.map((x) => x.step), 'same PPO step count, each step once');
  t.same(again.map((x) => [x.data_epoch, x.data_batch]), ppo.map((x) => [x.data_epoch, x.data_batch]), 'the same prompt batch at every step: none lost or repeated');
  const worst = Math.max(...again.map((x, i) => Math.abs((x.reward as number) - rewards[i])));
  t.ok(worst < 1e-4, `rewards of the resumed run equal the uninterrupted run's at every step (max |diff| ${worst.toExponential(2)})`);
});

t.test('Ctrl-C stops quartet ppo after the current step with a checkpoint there; --resume finishes the run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'q-e2e-int-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const world = makeTinyRun(join(dir, 'world'), { rows: 200, seed: 4 });
  const cfgFile = join(dir, 'e2e.json');
  writeFileSync(cfgFile, JSON.stringify({ ...config, ppo: { ...config.ppo, maxSteps: 5, promptBatchSize: 8, trainBatchSize: 8 } }));
  const out = join(dir, 'run');
  const first = await quartet(t, ['ppo', '--config', cfgFile, '--actor-model', world.model, '--reward-model', world.model, '--data', world.data, '--output-dir', out],
    { killOn: /ppo step 2\/5/, killSignal: 'SIGINT' });
  t.equal(first.code, 130, `exit code 130 after Ctrl-C (stderr tail: ${first.stderr.slice(-800)})`);
  t.match(first.stderr, /stopping after the current step/);
  t.match(first.stdout, /quartet ppo: stopped in .*; continue with: npx quartet ppo --output-dir .* --resume/);
  const stoppedAt = metrics(out).filter((x) => x.phase === 'ppo').length;
  t.ok(stoppedAt >= 2 && stoppedAt < 5, `stopped after step ${stoppedAt} of 5`);
  t.ok(existsSync(join(out, `ppo/checkpoints/step-${stoppedAt}/state.json`)), 'a checkpoint at the step it stopped');
  const again = await quartet(t, ['ppo', '--output-dir', out, '--resume']);
  t.equal(again.code, 0, `--resume finishes (stderr tail: ${again.stderr.slice(-800)})`);
  t.match(again.stdout, new RegExp(`resumed from .*step-${stoppedAt} after step ${stoppedAt}`));
  t.same(metrics(out).filter((x) => x.phase === 'ppo').map((x) => x.step), [1, 2, 3, 4, 5], 'every step once');
});
