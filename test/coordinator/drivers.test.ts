// The step drivers against in-process fake roles that record every call:
// batch shapes, micro-batching across replicas, the learning rates sent,
// dropping of short answers, the role/answer layouts of PPO tensors, metrics,
// checkpoint cadence and resuming without a lost or repeated batch.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { defaultConfig, type Config } from '../../src/config/defaults.js';
import type { StepData } from '../../src/data/datasets.js';
import type { PpoPrompts, RmPairs, Sequences, SftExamples } from '../../src/data/examples.js';
import { lrAt } from '../../src/tensor/optim/schedule.js';
import { MetricsWriter } from '../../src/coordinator/metrics.js';
import { runPpo, PpoDriver, updatesPerStep, type PpoData } from '../../src/coordinator/ppo.js';
import { microBatchRanges } from '../../src/coordinator/ppo-train.js';
import { latestPpoCheckpoint } from '../../src/coordinator/resume.js';
import { runRm } from '../../src/coordinator/rm.js';
import { runPaths } from '../../src/coordinator/run-dir.js';
import { runSft } from '../../src/coordinator/sft.js';
import { StepCheckpoints, type StepResume } from '../../src/coordinator/step-checkpoints.js';
import { ANSWER_BASE, EOS, fakeRoles, PAD } from './fake-roles.js';

function seqs(rows: number[][]): Sequences {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
  return { n: rows.length, offsets, ids: Int32Array.from(rows.flat()) };
}

const report = { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } };

/** n examples: prompt [5, 6, i] and answer [7, 8 (, 9 for odd i)]. */
function sftData(n: number, nEval: number): StepData<SftExamples> {
  const make = (k: number, base: number) => ({
    seqs: seqs(Array.from({ length: k }, (_, i) => [5, 6, base + i, 7, 8, ...(i % 2 ? [9] : [])])),
    promptLens: new Int32Array(k).fill(3),
  });
  return { train: make(n, 100), eval: make(nEval, 500), report, padId: PAD };
}

function rmData(n: number, nEval: number): StepData<RmPairs> {
  const make = (k: number): RmPairs => ({
    chosen: seqs(Array.from({ length: k }, (_, i) => [5, i + 20, 7, 8])),
    rejected: seqs(Array.from({ length: k }, (_, i) => [5, i + 20, 9])),
    promptLens: new Int32Array(k).fill(2),
  });
  return { train: make(n), eval: make(nEval), report, padId: PAD };
}

/** Prompts of widths 2..4 whose last token is i (so the fake actor answers with i % 4 tokens before eos). */
function ppoData(n: number): PpoData {
  const prompts: PpoPrompts = { prompts: seqs(Array.from({ length: n }, (_, i) => [...(i % 3 ? [3] : [3, 4]), ...(i % 2 ? [5] : []), 100 + i])) };
  // Texts a test scorer can check: each row's token ids, written out.
  const texts = {
    decode: (ids: Int32Array, mask: Int32Array, B: number, T: number, P: number) => {
      const row = (b: number, from: number, to: number) => [...ids.subarray(b * T + from, b * T + to)].filter((_, t) => mask[b * T + from + t]);
      const ans = Array.from({ length: B }, (_, b) => row(b, P, T));
      return {
        prompts: Array.from({ length: B }, (_, b) => row(b, 0, P).join(' ')),
        answers: ans.map((a) => (a.at(-1) === EOS ? a.slice(0, -1) : a).join(' ')),
        eos: ans.map((a) => a.at(-1) === EOS),
      };
    },
  };
  return { prompts, padId: PAD, eosId: EOS, texts };
}

function config(edit: (c: Config) => void): Config {
  const c = defaultConfig();
  edit(c);
  return c;
}

class MemoryMetrics {
  rows: { phase: string; step: number; figures: Record<string, number | null> }[] = [];
  write(phase: string, step: number, figures: Record<string, number | null>) {
    this.rows.push({ phase, step, figures });
  }
}

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'q-coord-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('sft: rows per optimizer step, micro-batch per replica, lr schedule, eval, metrics, save', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles({ replicas: { actor: 2 } });
  const c = config((c) => {
    c.sft.batchSize = 4; c.sft.gradAccum = 2; c.sft.epochs = 2; c.sft.lr = 1e-3; c.sft.warmup = 2; c.sft.schedule = 'cosine';
  });
  const metrics = new MemoryMetrics();
  const r = await runSft(roles, c, sftData(20, 5), join(dir, 'sft'), { metrics, progress: false });
  // 20 rows in steps of 8: 3 steps an epoch (8, 8, 4), 2 epochs.
  t.equal(r.steps, 6);
  const trains = calls.filter((x) => x.method === 'train_sft');
  // Each step is sharded over the 2 replicas: rows 4+4, 4+4, 2+2 per epoch.
  t.same(trains.map((x) => x.shapes.ids[0]), [4, 4, 4, 4, 2, 2, 4, 4, 4, 4, 2, 2]);
  t.ok(trains.every((x) => x.meta.microBatch === 2), 'micro-batch: batchSize 4 over 2 replicas');
  const lrs = trains.filter((x) => x.replica === 0).map((x) => x.meta.lr as number);
  t.same(lrs, [0, 1, 2, 3, 4, 5].map((s) => lrAt(s, { lr: 1e-3, schedule: 'cosine', warmup: 2, total: 6 })), 'lr per step from the schedule');
  const first = trains[0];
  t.same(first.shapes.loss_mask, first.shapes.ids, 'loss mask is [B, T]');
  t.equal(first.tensors.loss_mask.dtype, 'f32');
  // Eval before training and at both epoch ends: 3 passes over 5 rows, one batch each, sharded 3 + 2 over the replicas.
  t.equal(calls.filter((x) => x.method === 'eval_sft').length, 3 * 2, 'eval calls');
  t.same(metrics.rows.map((m) => m.step), [0, 1, 2, 3, 4, 5, 6]);
  t.ok(metrics.rows[3].figures.eval_loss !== undefined && metrics.rows[6].figures.eval_loss !== undefined, 'eval at epoch ends');
  t.ok(r.evalLossAfter! < r.evalLossBefore!, 'eval loss recorded before and after');
  const saves = calls.filter((x) => x.method === 'save');
  t.equal(saves.length, 1, 'saved once, by replica 0');
  t.same(saves[0].meta, { dir: join(dir, 'sft'), optimizer: false });
});

t.test('sft: maxSteps and maskPrompt', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles();
  const c = config((c) => { c.sft.batchSize = 3; c.sft.maxSteps = 2; c.sft.maskPrompt = true; });
  const r = await runSft(roles, c, sftData(20, 0), join(dir, 'sft'), { progress: false });
  t.equal(r.steps, 2);
  t.equal(r.evalLossBefore, null, 'no eval rows, no eval');
  const call = calls.find((x) => x.method === 'train_sft')!;
  const [B, T] = call.shapes.ids;
  const lm = call.tensors.loss_mask.data as Float32Array;
  const mask = call.tensors.mask.data as Int32Array;
  for (let b = 0; b < B; b++) {
    const row = Array.from(lm.subarray(b * T, (b + 1) * T));
    t.same(row.slice(0, 3), [0, 0, 0], 'prompt tokens are not targets');
    t.same(row.slice(3), Array.from(mask.subarray(b * T + 3, (b + 1) * T)), 'answer tokens are targets');
  }
});

t.test('rm: chosen/rejected tensors, pair-weighted metrics, eval accuracy', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles();
  const c = config((c) => { c.rm.batchSize = 4; c.reward.lr = 1e-3; c.reward.schedule = 'constant'; c.reward.warmup = 0; });
  const metrics = new MemoryMetrics();
  const r = await runRm(roles, c, rmData(10, 3), join(dir, 'rm'), { metrics, progress: false });
  t.equal(r.steps, 3);
  const tr = calls.filter((x) => x.method === 'train_rm');
  t.same(tr.map((x) => x.shapes.chosen_ids), [[4, 4], [4, 4], [2, 4]], 'chosen and rejected padded to one width');
  t.same(tr.map((x) => x.shapes.rejected_ids), tr.map((x) => x.shapes.chosen_ids));
  t.ok(tr.every((x) => x.meta.lr === 1e-3));
  // Rejected rows are one token shorter: their mask ends earlier.
  const rm = tr[0].tensors.rejected_mask.data as Int32Array;
  t.same(Array.from(rm.subarray(0, 4)), [1, 1, 1, 0]);
  t.ok(Math.abs(r.evalBefore.accuracy! - 0.8) < 1e-12);
  t.ok(Math.abs(metrics.rows.at(-1)!.figures.eval_accuracy! - 0.8) < 1e-12);
  t.ok(Math.abs(metrics.rows.at(-1)!.figures.accuracy! - 0.75) < 1e-12);
  t.same(calls.find((x) => x.method === 'save')!.meta, { dir: join(dir, 'rm'), optimizer: false });
});

function ppoConfig(edit: (c: Config) => void = () => {}): Config {
  return config((c) => {
    c.ppo.promptBatchSize = 8; c.ppo.trainBatchSize = 4; c.ppo.maxNewTokens = 5; c.ppo.maxSteps = 3;
    c.actor.lr = 1e-4; c.actor.warmup = 0; c.actor.schedule = 'linear';
    c.critic.lr = 2e-4; c.critic.warmup = 0; c.critic.schedule = 'constant';
    edit(c);
  });
}

function outs(dir: string) {
  const p = runPaths(dir);
  return { actor: p.ppoActor, critic: p.ppoCritic, checkpoints: p.checkpoints, actorSource: null, criticSource: null };
}

t.test('ppo: drops answers of <= 1 token, trims, sends role-layout tensors, trains in micro-batches', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles({ replicas: { actor: 2 } });
  const c = ppoConfig((c) => { c.ppo.maxSteps = 1; });
  const metrics = new MemoryMetrics();
  const r = await runPpo(roles, c, ppoData(8), outs(dir), { metrics, progress: false });
  t.equal(r.steps, 1);
  const gen = calls.filter((x) => x.method === 'generate');
  t.same(gen.map((x) => x.shapes.prompt_ids[0]), [4, 4], 'generation sharded over 2 actor replicas');
  // Prompt i's answer has (100 + i) % 4 tokens plus eos: lengths 1,2,3,4,1,2,3,4 -> the two 1s are dropped.
  const lp = calls.filter((x) => x.method === 'logprobs' && x.role === 'reference');
  t.equal(lp.length, 1);
  const [B, T] = lp[0].shapes.ids;
  t.equal(B, 6, 'rows with one-token answers dropped');
  const P = gen[0].shapes.prompt_ids[1];
  t.equal(T, P + 4, 'trimmed to the longest kept answer (3 tokens + eos)');
  t.equal(metrics.rows[0].figures.dropped, 2);
  const score = calls.find((x) => x.method === 'score')!;
  t.equal(score.meta.promptLength, P);
  // The mask ends with each answer: reward (fake: counts answer tokens) sees 2,3,4 for kept rows.
  t.equal(metrics.rows[0].figures.reward, (2 + 3 + 4 + 2 + 3 + 4) / 6);

  const tp = calls.filter((x) => x.method === 'train_ppo');
  // 6 rows in micro-batches of 4: [4, 2], each sharded over 2 replicas.
  t.same(tp.map((x) => x.shapes.ids[0]), [2, 2, 1, 1]);
  t.same(tp[0].shapes.advantages, [2, T - 1], 'advantages in the role layout [B, T-1]');
  const tv = calls.filter((x) => x.method === 'train_value');
  t.same(tv.map((x) => x.shapes.ids[0]), [4, 2], 'critic has one replica');
  const am = tv[0].tensors.action_mask.data as Float32Array;
  const adv = tv[0].tensors.returns.data as Float32Array;
  const ids = tv[0].tensors.ids.data as Int32Array;
  for (let b = 0; b < 4; b++) {
    for (let col = 0; col < T - 1; col++) {
      const tok = ids[b * T + col + 1];
      const isAnswer = col + 1 >= P && (tok >= ANSWER_BASE || tok === EOS);
      t.equal(am[b * (T - 1) + col], isAnswer ? 1 : 0, `action mask row ${b} col ${col}`);
      if (!isAnswer) t.equal(adv[b * (T - 1) + col], 0, `returns zero outside the answer (row ${b} col ${col})`);
    }
  }
  // Old logprobs go back exactly as the actor gave them on the answer columns.
  // Old log-probs: exactly the actor's where the action mask is 1 (the fake's -1 - 0.01 col), zero over the
  // prompt; after a row's end they are the actor's values at its padding, which the action mask leaves out.
  for (const call of tp) {
    const old = call.tensors.old_logprobs.data as Float32Array;
    const mask = call.tensors.action_mask.data as Float32Array;
    let actions = 0;
    for (let i = 0; i < old.length; i++) {
      const col = i % (T - 1);
      if (mask[i] === 1) {
        actions++;
        t.equal(old[i], Math.fround(-1 - 0.01 * col), `old log-prob at col ${col} is the actor's`);
      } else if (col < P - 1) t.equal(old[i], 0, `old log-prob at prompt col ${col} is zero`);
    }
    t.ok(actions > 0, 'each micro-batch has actions');
  }
  // The linear schedule over the phase's 2 updates (2 micro-batches x 1 step): each replica of update k gets lrAt(k).
  const lrs = [0, 0, 1, 1].map((k) => lrAt(k, { lr: 1e-4, schedule: 'linear', warmup: 0, total: 2 }));
  t.ok(lrs[2] < lrs[0], 'the schedule decays');
  t.same(tp.map((x) => x.meta.lr), lrs, 'train_ppo lr follows the schedule exactly');
  t.ok(existsSync(join(dir, 'ppo', 'actor', 'config.json')) && existsSync(join(dir, 'ppo', 'critic', 'config.json')), 'final models saved');
});

t.test('short last batches join the one before, so every replica of a training call gets a row', async (t) => {
  t.same(microBatchRanges(10, 4, 2), [[0, 4], [4, 8], [8, 10]], 'a tail of 2 for 2 replicas stays');
  t.same(microBatchRanges(9, 4, 2), [[0, 4], [4, 9]], 'a tail of 1 for 2 replicas joins the chunk before');
  t.same(microBatchRanges(3, 4, 2), [[0, 3]], 'a single chunk has nothing to join');
  t.equal(updatesPerStep(ppoConfig((c) => { c.ppo.promptBatchSize = 9; }), 2), 2, 'the lr schedule counts merged chunks');

  // SFT: 17 rows in steps of 8 over 2 replicas: 8, then 8 + the 1 left.
  const sft = fakeRoles({ replicas: { actor: 2 } });
  const r = await runSft(sft.roles, config((c) => { c.sft.batchSize = 4; c.sft.gradAccum = 2; }), sftData(17, 0), join(tmp(t), 'sft'), { progress: false });
  t.equal(r.steps, 2);
  t.same(sft.calls.filter((x) => x.method === 'train_sft').map((x) => x.shapes.ids[0]), [4, 4, 5, 4]);

  // PPO: 6 kept rows in chunks of 4 over 3 actor replicas: the tail of 2 joins, one update of 2 + 2 + 2.
  const ppo = fakeRoles({ replicas: { actor: 3 } });
  await runPpo(ppo.roles, ppoConfig((c) => { c.ppo.maxSteps = 1; }), ppoData(8), outs(tmp(t)), { progress: false });
  t.same(ppo.calls.filter((x) => x.method === 'train_ppo').map((x) => x.shapes.ids[0]), [2, 2, 2]);
  t.same(ppo.calls.filter((x) => x.method === 'train_value').map((x) => x.shapes.ids[0]), [6], 'the critic trains on the same merged chunk');
});

t.test('ppo: a maxSteps beyond what the epochs allow says so', async (t) => {
  const dir = tmp(t);
  const { roles } = fakeRoles({ answerLen: () => 3 });
  const lines: string[] = [];
  const r = await runPpo(roles, ppoConfig((c) => { c.ppo.maxSteps = 20; }), ppoData(24), outs(dir), { log: (l) => lines.push(l), progress: false });
  t.equal(r.steps, 3);
  t.match(lines.join('\n'), /ppo\.maxSteps = 20, but 24 prompts make 3 steps in 1 epoch\(s\); running 3 \(raise ppo\.epochs for more\)/);
});

t.test('ppo: learning rates over the run follow the schedules; metrics per step', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles({ answerLen: () => 3 });
  const c = ppoConfig((c) => { c.ppo.ppoEpochs = 2; });
  const metrics = new MemoryMetrics();
  await runPpo(roles, c, ppoData(40), outs(dir), { metrics, progress: false });
  const lrs = calls.filter((x) => x.method === 'train_ppo').map((x) => x.meta.lr as number);
  // 3 steps x 2 epochs x (8 rows / 4) = 12 updates, linear from 1e-4 to 0 over 12.
  t.same(lrs, Array.from({ length: 12 }, (_, s) => lrAt(s, { lr: 1e-4, schedule: 'linear', warmup: 0, total: 12 })));
  t.ok(calls.filter((x) => x.method === 'train_value').every((x) => x.meta.lr === 2e-4));
  t.same(metrics.rows.map((m) => m.step), [1, 2, 3]);
  for (const k of ['reward', 'kl', 'kl_per_token', 'policy_loss', 'value_loss', 'clip_frac', 'value_clip_frac', 'time_generate', 'time_experience', 'time_train', 'tokens_per_s', 'answer_len'])
    t.type(metrics.rows[0].figures[k], 'number', `figure ${k}`);
  // Fake logprobs differ from the reference by 0.5 per token: the plain estimate per answer = 0.5 x 4 tokens (3 + eos),
  // the k3 one (e^-0.5 - 1 + 0.5) x 4.
  t.ok(Math.abs(metrics.rows[0].figures.kl_sampled! - 2) < 1e-5, `kl_sampled ${metrics.rows[0].figures.kl_sampled}`);
  t.ok(Math.abs(metrics.rows[0].figures.kl! - 4 * (Math.exp(-0.5) - 0.5)) < 1e-5, `kl ${metrics.rows[0].figures.kl}`);
});

t.test('ppo: checkpoints every saveEvery steps; a stopped run resumes without a lost or repeated batch', async (t) => {
  const dir = tmp(t);
  const c = ppoConfig((c) => { c.ppo.maxSteps = 5; c.ppo.saveEvery = 2; c.ppo.promptBatchSize = 4; c.ppo.epochs = 2; });
  const data = ppoData(12); // 3 batches an epoch: steps run into a second epoch

  const whole = fakeRoles();
  await runPpo(whole.roles, c, data, outs(join(dir, 'whole')), { progress: false });
  const batches = (calls: typeof whole.calls) => calls.filter((x) => x.method === 'generate').map((x) => Array.from(x.tensors.prompt_ids.data as Int32Array).join(','));
  const seeds = (calls: typeof whole.calls) => calls.filter((x) => x.method === 'generate').map((x) => x.meta.seed);
  const lrs = (calls: typeof whole.calls) => calls.filter((x) => x.method === 'train_ppo').map((x) => x.meta.lr);
  t.same(latestPpoCheckpoint(runPaths(join(dir, 'whole')))?.state.step, 4, 'checkpoints at steps 2 and 4 (not at the final step)');
  t.ok(existsSync(join(dir, 'whole', 'ppo', 'checkpoints', 'step-2', 'state.json')));

  // The same run stopped after step 3 (a checkpoint is taken at the stop), then resumed from it.
  const run = join(dir, 'cut');
  const first = fakeRoles();
  const d: PpoDriver = new PpoDriver(first.roles, c, data, outs(run), { progress: false, shouldStop: (): boolean => d.position.step >= 3 });
  await d.run();
  const ck = latestPpoCheckpoint(runPaths(run))!;
  t.equal(ck.state.step, 3, 'a stopped run checkpoints the step it stopped at');
  const second = fakeRoles();
  const r = await runPpo(second.roles, c, data, outs(run), { progress: false }, ck);
  t.equal(r.steps, 5, 'same step count as the uninterrupted run');
  const loads = second.calls.filter((x) => x.method === 'load');
  t.same(loads.map((x) => [x.role, x.meta.optimizer]), [['actor', true], ['critic', true]], 'models loaded with optimizer state');
  const resumed = [...batches(first.calls), ...batches(second.calls)];
  t.same(resumed, batches(whole.calls), 'steps 1-3 from the first run and 4-5 after resuming are exactly the uninterrupted batches');
  t.same([...seeds(first.calls), ...seeds(second.calls)], seeds(whole.calls), 'same generation seeds');
  t.same(lrs(second.calls), lrs(whole.calls).slice(-lrs(second.calls).length), 'the lr schedule continues where it was');
});

t.test('sft and rm: checkpoints every saveEvery steps; a stopped run resumes without a lost or repeated batch', async (t) => {
  const cases = [
    {
      name: 'sft', role: 'actor', train: 'train_sft', evalMethod: 'eval_sft',
      edit: (c: Config) => { Object.assign(c.sft, { batchSize: 4, epochs: 2, saveEvery: 2, schedule: 'linear' }); },
      run: (roles: ReturnType<typeof fakeRoles>['roles'], c: Config, out: string, hooks: object, ck: StepResume) => runSft(roles, c, sftData(10, 3), out, { progress: false, ...hooks }, ck),
      rows: (x: ReturnType<typeof fakeRoles>['calls'][number]) => Array.from(x.tensors.ids.data as Int32Array).join(','),
    },
    {
      name: 'rm', role: 'reward', train: 'train_rm', evalMethod: 'eval_rm',
      edit: (c: Config) => { Object.assign(c.rm, { batchSize: 4, epochs: 2, saveEvery: 2 }); c.reward.schedule = 'linear'; },
      run: (roles: ReturnType<typeof fakeRoles>['roles'], c: Config, out: string, hooks: object, ck: StepResume) => runRm(roles, c, rmData(10, 3), out, { progress: false, ...hooks }, ck),
      rows: (x: ReturnType<typeof fakeRoles>['calls'][number]) => Array.from(x.tensors.chosen_ids.data as Int32Array).join(','),
    },
  ] as const;
  for (const k of cases) {
    const dir = tmp(t);
    const c = config(k.edit); // 10 rows in batches of 4: 3 batches an epoch (the tail of 2 kept), 6 steps in all
    const ckFor = (run: string) => new StepCheckpoints(join(dir, run, 'checkpoints'), k.role, 2);
    const trained = (calls: ReturnType<typeof fakeRoles>['calls']) => calls.filter((x) => x.method === k.train);

    const whole = fakeRoles();
    const wholeCk = ckFor('whole');
    t.equal((await k.run(whole.roles, c, join(dir, 'whole', 'out'), {}, { checkpoints: wholeCk })).steps, 6, `${k.name}: 6 steps`);
    t.same(readdirSync(wholeCk.dir).sort(), ['step-2', 'step-4'], `${k.name}: checkpoints at steps 2 and 4 (not at the last)`);
    t.match(JSON.parse(readFileSync(join(wholeCk.dir, 'step-4', 'model', 'config.json'), 'utf8')), { optimizer: true }, `${k.name}: saved with optimizer state`);
    t.match(wholeCk.latest()!.state, { step: 4, batches: { epoch: 1, batch: 1 } });

    // Stopped after step 3: a checkpoint is taken there; the resumed run loads it and does steps 4-6.
    const firstCk = ckFor('cut');
    const first = fakeRoles();
    await k.run(first.roles, c, join(dir, 'cut', 'out'), { shouldStop: () => trained(first.calls).length >= 3 }, { checkpoints: firstCk });
    const from = firstCk.latest()!;
    t.equal(from.state.step, 3, `${k.name}: a stopped run checkpoints the step it stopped at`);
    const second = fakeRoles();
    const r = await k.run(second.roles, c, join(dir, 'cut', 'out'), {}, { checkpoints: ckFor('cut'), from });
    t.equal(r.steps, 6, `${k.name}: same step count as the uninterrupted run`);
    t.same(second.calls.filter((x) => x.method === 'load').map((x) => [x.role, x.meta]), [[k.role, { dir: join(from.dir, 'model'), optimizer: true }]], `${k.name}: loaded with optimizer state`);
    t.equal(second.calls.filter((x) => x.method === k.evalMethod).length > 0, true);
    t.same([...trained(first.calls), ...trained(second.calls)].map(k.rows), trained(whole.calls).map(k.rows), `${k.name}: steps 1-3, then 4-6 after resuming, are exactly the uninterrupted batches`);
    t.same([...trained(first.calls), ...trained(second.calls)].map((x) => x.meta.lr), trained(whole.calls).map((x) => x.meta.lr), `${k.name}: the lr schedule continues where it was`);
    t.same(r.output, join(dir, 'cut', 'out'));
  }
});

t.test('only the newest keepCheckpoints checkpoints stay (ppo and the one-model steps); 0 keeps all', async (t) => {
  const dir = tmp(t);
  const c = ppoConfig((c) => { c.ppo.maxSteps = 5; c.ppo.saveEvery = 1; c.ppo.promptBatchSize = 4; c.keepCheckpoints = 2; });
  await runPpo(fakeRoles().roles, c, ppoData(20), outs(join(dir, 'ppo')), { progress: false });
  t.same(readdirSync(join(dir, 'ppo', 'ppo', 'checkpoints')).sort(), ['step-3', 'step-4'], 'ppo: steps 1-4 checkpointed, the two newest kept');
  const ck = new StepCheckpoints(join(dir, 'sft-ck'), 'actor', 1, () => {}, 2);
  await runSft(fakeRoles().roles, config((c) => { c.sft.batchSize = 4; c.sft.epochs = 2; }), sftData(10, 0), join(dir, 'sft'), { progress: false }, { checkpoints: ck });
  t.same(readdirSync(ck.dir).sort(), ['step-4', 'step-5'], 'sft: 6 steps, checkpoints 1-5, the two newest kept');
  const all = new StepCheckpoints(join(dir, 'sft-all'), 'actor', 2, () => {}, 0);
  await runSft(fakeRoles().roles, config((c) => { c.sft.batchSize = 4; c.sft.epochs = 2; }), sftData(10, 0), join(dir, 'sft2'), { progress: false }, { checkpoints: all });
  t.same(readdirSync(all.dir).sort(), ['step-2', 'step-4'], 'keep 0: all of them');
});

t.test('ppo: grpo repeats each prompt groupSize times and runs without a critic', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles({ answerLen: (last) => last % 3 });
  const c = ppoConfig((c) => { c.ppo.algorithm = 'grpo'; c.ppo.groupSize = 4; c.ppo.promptBatchSize = 2; c.ppo.maxSteps = 1; c.ppo.trainBatchSize = 8; });
  const metrics = new MemoryMetrics();
  await runPpo(roles, c, ppoData(4), outs(dir), { metrics, progress: false });
  t.equal(calls.find((x) => x.method === 'generate')!.shapes.prompt_ids[0], 8);
  t.equal(calls.filter((x) => x.role === 'critic').length, 0, 'no critic call');
  const tp = calls.find((x) => x.method === 'train_ppo')!;
  t.equal(tp.shapes.ids[0], 8, 'group rows are kept (no drop)');
  // The fake scores are answer lengths, equal within a group (same prompt): group-relative advantages are 0.
  t.ok(Array.from(tp.tensors.advantages.data as Float32Array).every((v) => Math.abs(v) < 1e-6));
  t.equal(metrics.rows[0].figures.value_loss, undefined);
});

t.test('metrics writer: JSON lines with phase and step; truncateAfter drops later lines of one phase', async (t) => {
  const dir = tmp(t);
  const m = new MetricsWriter(join(dir, 'metrics.jsonl'));
  m.write('sft', 1, { loss: 2 });
  m.write('ppo', 1, { reward: 0.5, kl: NaN });
  m.write('ppo', 2, { reward: 0.7 });
  m.truncateAfter('ppo', 1);
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(rows.map((r) => [r.phase, r.step]), [['sft', 1], ['ppo', 1]]);
  t.equal(rows[1].kl, null, 'a NaN figure is written as null');
});

t.test('ppo overlap: step k+1 is generated before step k trains; its old log-probs and values wait for the updates', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles({ answerLen: () => 3 });
  const c = ppoConfig((c) => { c.ppo.overlap = true; c.ppo.maxSteps = 3; c.ppo.promptBatchSize = 4; c.ppo.saveEvery = 2; });
  const metrics = new MemoryMetrics();
  const r = await runPpo(roles, c, ppoData(12), outs(dir), { metrics, progress: false });
  t.equal(r.steps, 3);
  t.same(metrics.rows.map((m) => m.step), [1, 2, 3]);
  const seq = calls.filter((x) => x.role === 'actor' || x.role === 'critic').map((x) => `${x.role}.${x.method}`);
  const at = (name: string, k: number) => seq.findIndex((s, i) => s === name && seq.slice(0, i + 1).filter((x) => x === name).length === k);
  const lastOf = (name: string, k: number, per: number) => at(name, k * per);
  // One train_ppo and one train_value per step (4 rows in one micro-batch of 4).
  for (const k of [2, 3]) {
    t.ok(at('actor.generate', k) < at('actor.train_ppo', k - 1), `generate of step ${k} is sent before step ${k - 1} trains`);
    t.ok(at('actor.logprobs', k) > lastOf('actor.train_ppo', k - 1, 1), `old log-probs of step ${k} come after step ${k - 1}'s update`);
    t.ok(at('critic.values', k) > lastOf('critic.train_value', k - 1, 1), `values of step ${k} come after the critic's update`);
  }
  const gens = calls.filter((x) => x.method === 'generate').map((x) => Array.from(x.tensors.prompt_ids.data as Int32Array).join(','));
  t.equal(new Set(gens).size, 3, 'three different prompt batches, none repeated');
  const ck = latestPpoCheckpoint(runPaths(dir))!;
  t.same(ck.state.prompts, { epoch: 0, batch: 2 }, 'the checkpoint after step 2 records the position before the prefetched batch');
});

t.test('ppo with the ptx loss: each micro-batch gets as many ptx rows as it has; the ptx position is checkpointed', async (t) => {
  const dir = tmp(t);
  const { roles, calls } = fakeRoles({ answerLen: () => 3 });
  const c = ppoConfig((c) => { c.ppo.ptxCoef = 2; c.data.ptxPaths = ['unused']; c.ppo.maxSteps = 3; c.ppo.saveEvery = 2; });
  const blocks = { seqs: seqs(Array.from({ length: 10 }, (_, i) => [40 + i, 41, 42, 43])), promptLens: new Int32Array(10) };
  await runPpo(roles, c, { ...ppoData(40), ptx: blocks }, outs(dir), { progress: false });
  const tp = calls.filter((x) => x.method === 'train_ppo');
  t.ok(tp.every((x) => x.shapes.ptx_ids[0] === x.shapes.ids[0] && x.shapes.ptx_ids[1] === 4), 'ptx rows match the micro-batch, block length 4');
  t.ok(tp.every((x) => x.meta.ptxCoef === 2));
  const firsts = tp.flatMap((x) => Array.from(x.tensors.ptx_ids.data as Int32Array).filter((_, i) => i % 4 === 0));
  t.same([...new Set(firsts.slice(0, 8))].length, 8, 'the first blocks drawn are all different (a shuffled pass)');
  const ck = latestPpoCheckpoint(runPaths(dir))!;
  t.ok(ck.state.ptx !== null && ck.state.ptx.batch > 0, `ptx position saved: ${JSON.stringify(ck.state.ptx)}`);
  await t.rejects(runPpo(roles, c, ppoData(40), outs(join(dir, 'x')), { progress: false }), /ppo\.ptxCoef > 0 but no ptx data/);
});
