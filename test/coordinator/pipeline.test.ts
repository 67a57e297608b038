// train(): the steps in order with fake roles, each step's output feeding the
// next through the placement plans (actor and reference <- SFT output,
// critic and reward <- RM output), roles started per step and closed after,
// the run state for --resume, and the refusal to overwrite a finished run.
import { existsSync, statSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig, type Config, type StepName } from '../../src/config/defaults.js';
import { train, type StartRoles } from '../../src/coordinator/pipeline.js';
import type { PlanInput } from '../../src/runtime/index.js';
import { makeTinyRun } from '../e2e/tiny-run.js';
import { fakeRoles } from './fake-roles.js';

const dir = mkdtempSync(join(tmpdir(), 'q-pipeline-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const world = makeTinyRun(join(dir, 'world'), { rows: 120, seed: 3 });

function config(out: string): Config {
  const c = defaultConfig();
  c.outputDir = out;
  c.actor.model = world.model;
  c.reward.model = world.model;
  c.data.paths = [world.data];
  c.data.maxAnswerLen = 14;
  c.data.maxPromptLen = 16;
  c.sft.batchSize = 8;
  c.sft.maxSteps = 2;
  c.rm.batchSize = 8;
  c.rm.maxSteps = 2;
  Object.assign(c.ppo, { promptBatchSize: 4, trainBatchSize: 4, maxNewTokens: 6, maxSteps: 2 });
  return c;
}

function recorder() {
  const started: { step: StepName; plan: PlanInput }[] = [];
  let closed = 0;
  const start: StartRoles = async (plan, step) => {
    started.push({ step, plan });
    // Saved folders get the world model's config.json, so the next step's check of its model folder passes.
    const savedConfig = JSON.parse(readFileSync(join(world.model, 'config.json'), 'utf8'));
    return { roles: fakeRoles({ answerLen: () => 3, savedConfig }).roles, close: async () => { closed++; } };
  };
  return { started, start, closed: () => closed };
}

t.test('steps run in order, each output feeding the next, roles closed after each step', async (t) => {
  const out = join(dir, 'run');
  const rec = recorder();
  const lines: string[] = [];
  const r = await train(config(out), { startRoles: rec.start, progress: false, log: (l) => lines.push(l) });
  t.same(rec.started.map((s) => s.step), ['sft', 'rm', 'ppo']);
  t.equal(rec.closed(), 3, 'each step closes its roles');
  const args = (i: number, role: string) => rec.started[i].plan[role].args as Record<string, unknown>;
  t.same(Object.keys(rec.started[0].plan), ['actor'], 'sft starts the actor group only');
  t.equal(args(0, 'actor').model, world.model);
  t.same(Object.keys(rec.started[1].plan), ['reward'], 'rm starts the reward group only');
  t.equal(args(1, 'reward').model, world.model);
  t.same(Object.keys(rec.started[2].plan).sort(), ['actor', 'critic', 'reference', 'reward']);
  t.equal(args(2, 'actor').model, join(out, 'sft'), 'actor <- SFT output');
  t.equal(args(2, 'reference').model, join(out, 'sft'), 'reference <- SFT output');
  t.equal(args(2, 'critic').model, join(out, 'rm'), 'critic <- RM output');
  t.equal(args(2, 'reward').model, join(out, 'rm'), 'reward <- RM output');
  t.equal(r.sft?.steps, 2);
  t.equal(r.rm?.steps, 2);
  t.equal(r.ppo?.steps, 2);
  const state = JSON.parse(readFileSync(join(out, 'state.json'), 'utf8'));
  t.same(state.done, ['sft', 'rm', 'ppo']);
  t.ok(existsSync(join(out, 'sft', 'tokenizer.json')) && existsSync(join(out, 'ppo', 'actor', 'tokenizer.json')), 'step outputs carry the tokenizer');
  for (const [final, from] of [['actor', 'ppo/actor'], ['critic', 'ppo/critic'], ['reward', 'rm']]) {
    const a = statSync(join(out, final, 'config.json')), b = statSync(join(out, from, 'config.json'));
    t.equal(a.ino, b.ino, `<run>/${final} holds ${from}'s files (linked, not copied)`);
  }
  const saved = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  t.equal(saved.actor.model, world.model, 'the resolved config as given is saved');
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  t.type(summary.reward.after, 'number');
  t.type(summary.time.total_s, 'number');
  t.ok(existsSync(join(out, 'report.html')));

  await t.rejects(train(config(out), { startRoles: rec.start, progress: false }), /already holds a run with step\(s\) sft, rm, ppo done; pass --resume/);
  const again = recorder();
  const c = config(out);
  c.resume = true;
  const r2 = await train(c, { startRoles: again.start, progress: false });
  t.same(r2.skipped, ['sft', 'rm', 'ppo'], 'a resumed finished run skips every step');
  t.equal(again.started.length, 0, 'and starts no role');
});

t.test('the step commands in one run directory: each later step takes the models the earlier ones wrote', async (t) => {
  const out = join(dir, 'steps');
  const rec = recorder();
  const step = (name: StepName, edit: (c: Config) => void = () => {}) => {
    const c = config(out);
    c.steps = [name];
    c.actor.model = null;
    c.reward.model = null;
    edit(c);
    return train(c, { startRoles: rec.start, progress: false });
  };
  await step('sft', (c) => { c.actor.model = world.model; });
  await step('rm', (c) => { c.reward.model = world.model; });
  await step('ppo');
  const ppo = rec.started[2].plan;
  t.equal((ppo.actor.args as Record<string, unknown>).model, join(out, 'sft'), 'ppo finds the SFT output of the same run');
  t.equal((ppo.reward.args as Record<string, unknown>).model, join(out, 'rm'), 'and the RM output');
  await t.rejects(step('rm', (c) => { c.reward.model = world.model; }), /step\(s\) rm done; pass --resume/, 'a done step is not overwritten');
});

t.test('a step stopped early is not marked done; a failing data load leaves no roles running', async (t) => {
  const out = join(dir, 'stopped');
  const rec = recorder();
  let calls = 0;
  await train(config(out), { startRoles: rec.start, progress: false, shouldStop: () => ++calls > 1 });
  t.notOk(existsSync(join(out, 'state.json')), 'sft stopped after one step is not marked done (no step is)');
  t.same(rec.started.map((s) => s.step), ['sft'], 'no later step starts');
  t.ok(existsSync(join(out, 'checkpoints', 'sft', 'step-1', 'state.json')), 'a checkpoint where sft stopped');

  // --resume continues sft from that checkpoint: one more step, not two; its metrics lines are not doubled.
  const again = config(out);
  again.resume = true;
  const lines: string[] = [];
  const r = await train(again, { startRoles: recorder().start, progress: false, log: (l) => lines.push(l) });
  t.ok(lines.some((l) => /^sft: resumed from .*checkpoints\/sft\/step-1 after step 1$/.test(l)), 'sft resumes after step 1');
  t.equal(r.sft?.steps, 2);
  const sftRows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((m) => m.phase === 'sft');
  t.same(sftRows.map((m) => m.step), [0, 1, 2], 'eval before, step 1 from the first attempt, step 2 after resuming');
  // Without --resume, a fresh attempt in a run directory removes an earlier attempt's checkpoints.
  const out2 = join(dir, 'stopped-2');
  let n = 0;
  await train(config(out2), { startRoles: recorder().start, progress: false, shouldStop: () => ++n > 1 });
  t.ok(existsSync(join(out2, 'checkpoints', 'sft')));
  await train(config(out2), { startRoles: recorder().start, progress: false, shouldStop: () => true });
  t.notOk(existsSync(join(out2, 'checkpoints', 'sft', 'step-1')), 'not resumed: the old checkpoints are gone');

  const bad = config(join(dir, 'bad-data'));
  bad.data.paths = [join(dir, 'missing.jsonl')];
  const rec2 = recorder();
  await t.rejects(train(bad, { startRoles: rec2.start, progress: false }), /missing\.jsonl/);
  t.equal(rec2.closed(), rec2.started.length, 'roles started for the step were closed');
});
