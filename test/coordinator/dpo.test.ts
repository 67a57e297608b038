// The DPO driver against in-process roles that record every call: the
// reference is asked for the log-probs of both sides of each batch before the
// actor trains on it, and its sums over the answer tokens reach train_dpo
// (checked against sums computed here from the unpadded pairs); shapes,
// micro-batching across two actor replicas, learning rates, pair-weighted
// metrics, evaluation before and after, the save; the config rules of the dpo
// step and its placement.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig, type Config } from '../../src/config/defaults.js';
import { placementPlan } from '../../src/config/plan.js';
import { resolveConfig } from '../../src/config/validate.js';
import { answerTargets, dpoTotalSteps, runDpo } from '../../src/coordinator/dpo.js';
import { StepCheckpoints } from '../../src/coordinator/step-checkpoints.js';
import type { Figures } from '../../src/coordinator/metrics.js';
import type { StepData } from '../../src/data/datasets.js';
import type { RmPairs, Sequences } from '../../src/data/examples.js';
import type { Phase } from '../../src/report/metrics.js';
import { inProcessRoles, wireTensor, type Request, type RoleSetup } from '../../src/runtime/index.js';
import { lrAt } from '../../src/tensor/optim/schedule.js';

const PAD = 0;

const root = mkdtempSync(join(tmpdir(), 'quartet-dpo-driver-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

function seqs(rows: number[][]): Sequences {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
  return { n: rows.length, offsets, ids: Int32Array.from(rows.flat()) };
}

/** Pair i: prompt [5, 6 (, 9 for odd i)], chosen answer of 2 or 3 tokens, rejected of 1 to 3. */
function pairsOf(k: number, base: number): { ex: RmPairs; prompts: number[][]; chosen: number[][]; rejected: number[][] } {
  const prompts = Array.from({ length: k }, (_, i) => [5, 6, ...(i % 2 ? [9] : [])]);
  const chosen = Array.from({ length: k }, (_, i) => [base + i, 11, ...(i % 3 ? [12] : [])]);
  const rejected = Array.from({ length: k }, (_, i) => [base + 50 + i, ...Array.from({ length: i % 3 }, () => 13)]);
  const ex: RmPairs = {
    chosen: seqs(prompts.map((p, i) => [...p, ...chosen[i]])),
    rejected: seqs(prompts.map((p, i) => [...p, ...rejected[i]])),
    promptLens: Int32Array.from(prompts, (p) => p.length),
  };
  return { ex, prompts, chosen, rejected };
}

/** The fake reference's log-prob of a target token: a function of the token alone. */
const tokenLogp = (tok: number) => -0.5 - (tok % 7);

interface Rec { role: string; replica: number; method: string; req: Request }

function roles() {
  const calls: Rec[] = [];
  let trainLoss = 0.7;
  const wrap = (role: string, replica: number, methods: Record<string, (req: Request) => unknown>): RoleSetup => ({
    methods: Object.fromEntries(Object.entries(methods).map(([name, fn]) => [name, async (req: Request) => {
      calls.push({ role, replica, method: name, req });
      return fn(req) as never;
    }])),
  });
  const reference = wrap('reference', 0, {
    logprobs(req: Request) {
      const [B, T] = req.tensors.ids.shape;
      const ids = req.tensors.ids.data as Int32Array;
      const out = new Float32Array(B * (T - 1));
      for (let b = 0; b < B; b++) for (let j = 0; j < T - 1; j++) out[b * (T - 1) + j] = tokenLogp(ids[b * T + j + 1]);
      return { tensors: { logprobs: wireTensor('f32', [B, T - 1], out) } };
    },
  });
  // Replica r reports accuracy r and its pair count, so the driver's pair-weighted mean is predictable.
  const actor = (replica: number) => wrap('actor', replica, {
    train_dpo(req: Request) {
      trainLoss *= 0.9;
      const B = req.tensors.chosen_ids.shape[0];
      return { metrics: { loss: trainLoss, acc: replica, chosen_reward: 0.1, rejected_reward: -0.1, margin: 0.2, pairs: B, grad_norm: 1, skipped: 0 } };
    },
    eval_dpo(req: Request) {
      const B = req.tensors.chosen_ids.shape[0];
      return { metrics: { loss: 0.6, acc: replica, chosen_reward: 0, rejected_reward: 0, margin: 0, pairs: B } };
    },
    save(req: Request) {
      mkdirSync(req.meta.dir as string, { recursive: true });
      writeFileSync(join(req.meta.dir as string, 'config.json'), '{}');
    },
    load: () => ({}),
  });
  return { roles: inProcessRoles({ actor: [actor(0), actor(1)], reference: [reference] }), calls };
}

function config(): Config {
  const c = defaultConfig();
  c.steps = ['dpo'];
  c.seed = 3;
  Object.assign(c.dpo, { batchSize: 4, gradAccum: 2, epochs: 2, lr: 1e-3, schedule: 'linear', warmup: 1, evalEvery: 0, evalBatchSize: 5, beta: 0.2, labelSmoothing: 0.1 });
  return c;
}

t.test('runDpo: reference sums over answer tokens reach train_dpo; steps, shapes, lr, metrics, eval and save', async (t) => {
  const train = pairsOf(13, 100), evalSet = pairsOf(7, 300);
  const data: StepData<RmPairs> = { train: train.ex, eval: evalSet.ex, report: { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } }, padId: PAD };
  const cfg = config();
  const { roles: r, calls } = roles();
  const rows: { phase: Phase; step: number; figures: Figures }[] = [];
  const out = join(root, 'a');
  const res = await runDpo(r, cfg, data, `${out}/dpo`, { progress: false, metrics: { write: (phase, step, figures) => rows.push({ phase, step, figures }) } });

  const total = dpoTotalSteps(cfg, 13, 2);
  t.equal(total, 4, '13 pairs in steps of 8 for 2 epochs: 2 + 2 steps');
  t.equal(res.steps, total);
  const trains = calls.filter((c) => c.method === 'train_dpo');
  t.equal(trains.filter((c) => c.replica === 0).length, total, 'one train_dpo group call per step');

  // Every actor call comes right after the reference's logprobs of its batch (both sides at once: 2B rows).
  const sequence = calls.filter((c) => c.replica === 0 || c.role === 'reference').map((c) => c.method);
  const evals = Math.ceil(7 / 5);
  const want = [
    ...Array(evals).fill(['logprobs', 'eval_dpo']).flat(),
    'logprobs', 'train_dpo', 'logprobs', 'train_dpo', ...Array(evals).fill(['logprobs', 'eval_dpo']).flat(),
    'logprobs', 'train_dpo', 'logprobs', 'train_dpo', ...Array(evals).fill(['logprobs', 'eval_dpo']).flat(),
    'save',
  ];
  t.same(sequence, want, 'reference before each actor call; eval before training and at each epoch end; save last');

  let checked = 0;
  for (const c of trains) {
    const ts = c.req.tensors;
    const [B, T] = ts.chosen_ids.shape;
    t.same(ts.rejected_ids.shape, [B, T]);
    t.same(ts.chosen_answer_mask.shape, [B, T - 1]);
    t.same(ts.ref_chosen_logps.shape, [B]);
    // Recover each row's pair from its first answer token, then sum the fake log-probs over the unpadded answer.
    const ids = ts.chosen_ids.data as Int32Array;
    for (let b = 0; b < B; b++) {
      const i = train.chosen.findIndex((a, k) => ids[b * T + train.prompts[k].length] === a[0] && ids[b * T] === 5);
      const sum = (ans: number[]) => ans.reduce((s, tok) => s + tokenLogp(tok), 0);
      t.ok(Math.abs((ts.ref_chosen_logps.data as Float32Array)[b] - sum(train.chosen[i])) < 1e-5, `ref chosen sum of pair ${i}`);
      t.ok(Math.abs((ts.ref_rejected_logps.data as Float32Array)[b] - sum(train.rejected[i])) < 1e-5, `ref rejected sum of pair ${i}`);
      checked++;
    }
  }
  t.equal(checked, 2 * 13, 'every training pair of both epochs was checked');
  for (const [k, c] of trains.filter((x) => x.replica === 0).entries()) {
    t.ok(Math.abs((c.req.meta.lr as number) - lrAt(k, { lr: 1e-3, schedule: 'linear', warmup: 1, total })) < 1e-12, `step ${k + 1}: lr from the dpo schedule`);
    t.match(c.req.meta, { beta: 0.2, labelSmoothing: 0.1, microBatch: 2, gradClip: cfg.actor.gradClip });
  }
  const saves = calls.filter((c) => c.method === 'save');
  t.equal(saves.length, 1);
  t.same(saves[0].req.meta, { dir: `${out}/dpo`, optimizer: false }, 'actor 0 saves the final actor');

  t.same(rows.map((x) => [x.phase, x.step]), [['dpo', 0], ['dpo', 1], ['dpo', 2], ['dpo', 3], ['dpo', 4]], 'a row before training and one per step');
  // 8 pairs over two replicas: 4 + 4 -> accuracy (0*4 + 1*4) / 8; the last step's 5 pairs: 3 + 2 -> 2/5.
  t.ok(Math.abs((rows[1].figures.accuracy as number) - 0.5) < 1e-12, 'accuracy is the pair-weighted mean over replicas');
  t.ok(Math.abs((rows[4].figures.accuracy as number) - 0.4) < 1e-12, 'also for a short last batch');
  t.type(rows[2].figures.eval_accuracy, 'number', 'evaluation at the end of epoch 1');
  // Eval batches of 5 then 2 pairs: replica 1 gets 2 then 1 -> (2/5 * 5 + 1/2 * 2) / 7.
  t.ok(Math.abs((res.evalBefore.accuracy as number) - (2 + 1) / 7) < 1e-12, `held-out accuracy weighted by pairs: ${res.evalBefore.accuracy}`);
});

t.test('runDpo: shouldStop ends the phase after the current step, and the actor is still saved', async (t) => {
  const train = pairsOf(13, 100);
  const data: StepData<RmPairs> = { train: train.ex, eval: pairsOf(0, 0).ex, report: { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } }, padId: PAD };
  const { roles: r, calls } = roles();
  let n = 0;
  const res = await runDpo(r, config(), data, join(root, 'b', 'dpo'), { progress: false, shouldStop: () => n++ >= 1 });
  t.equal(res.steps, 1);
  t.equal(calls.filter((c) => c.method === 'eval_dpo').length, 0, 'no eval rows: no evaluation');
  t.equal(calls.filter((c) => c.method === 'save').length, 1);
});

t.test('runDpo: a run stopped after step 2 resumes from its checkpoint on both replicas, with the same batches and lrs', async (t) => {
  const train = pairsOf(13, 100);
  const data: StepData<RmPairs> = { train: train.ex, eval: pairsOf(3, 300).ex, report: { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } }, padId: PAD };
  const steps = (calls: Rec[]) => calls.filter((c) => c.method === 'train_dpo' && c.replica === 0).map((c) => [Array.from(c.req.tensors.chosen_ids.data as Int32Array).join(','), c.req.meta.lr]);
  const whole = roles();
  await runDpo(whole.roles, config(), data, join(root, 'w', 'dpo'), { progress: false });
  const checkpoints = new StepCheckpoints(join(root, 'r', 'checkpoints'), 'actor', 0);
  const first = roles();
  await runDpo(first.roles, config(), data, join(root, 'r', 'dpo'), { progress: false, shouldStop: () => steps(first.calls).length >= 2 }, { checkpoints });
  const from = checkpoints.latest()!;
  t.match(from.state, { step: 2, batches: { epoch: 0, batch: 2 } }, 'saveEvery 0: one checkpoint, where the run stopped (after the last batch of epoch 0)');
  const second = roles();
  const res = await runDpo(second.roles, config(), data, join(root, 'r', 'dpo'), { progress: false }, { checkpoints, from });
  t.equal(res.steps, 4);
  t.same(second.calls.filter((c) => c.method === 'load').map((c) => [c.replica, c.req.meta.optimizer]), [[0, true], [1, true]], 'every replica loads the checkpoint');
  t.same([...steps(first.calls), ...steps(second.calls)], steps(whole.calls), 'batches and learning rates as in the uninterrupted run');
  t.same(res.evalBefore, (await runDpo(roles().roles, config(), data, join(root, 'w2', 'dpo'), { progress: false })).evalBefore, 'the resumed run reports the held-out figures taken before training');
});

t.test('runDpo: a last batch with fewer pairs than actor replicas joins the one before', async (t) => {
  const data: StepData<RmPairs> = { train: pairsOf(9, 100).ex, eval: pairsOf(0, 0).ex, report: { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } }, padId: PAD };
  const { roles: r, calls } = roles();
  const res = await runDpo(r, config(), data, join(root, 'c', 'dpo'), { progress: false });
  t.equal(res.steps, 2, '9 pairs in steps of 8 over 2 replicas: one step of 9 per epoch');
  const trains = calls.filter((c) => c.method === 'train_dpo');
  t.same(trains.map((c) => [c.replica, c.req.tensors.chosen_ids.shape[0]]), [[0, 5], [1, 4], [0, 5], [1, 4]], 'both replicas get rows at every step');
});

t.test('answerTargets: the next-token targets at and after the prompt that are real tokens', (t) => {
  // Row 0: prompt 2, 5 real tokens of 6; row 1: prompt 3, 4 real tokens.
  const mask = Int32Array.from([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0]);
  t.same([...answerTargets(mask, Int32Array.from([2, 3]), 2, 6)], [0, 1, 1, 1, 0, 0, 0, 1, 0, 0]);
  t.end();
});

t.test('config: dpo is its own step after sft, exclusive with rm and ppo; it runs the actor and the reference', (t) => {
  const cfg = (values: object) => resolveConfig([{ source: 'test', values }]);
  t.throws(() => cfg({ steps: ['sft', 'rm', 'dpo'] }), /steps: 'dpo' replaces the reward model and PPO/, 'dpo with rm is refused, naming steps');
  t.throws(() => cfg({ steps: ['dpo', 'sft'] }), /list 'sft' before 'dpo'/, 'dpo before sft is refused');
  t.throws(() => cfg({ dpo: { beta: 0 } }), /dpo\.beta/, 'beta 0 is refused by key');
  const c = cfg({ steps: ['sft', 'dpo'], dpo: { lr: 2e-4, schedule: 'constant' } });
  t.same(c.steps, ['sft', 'dpo']);
  t.equal(c.dpo.beta, 0.1);
  t.equal(c.dpo.labelSmoothing, 0);
  c.actor.model = '/models/sft';
  const plan = placementPlan(c, 'dpo');
  t.same(Object.keys(plan).sort(), ['actor', 'reference'], 'the dpo step starts the actor and the reference only');
  t.equal(plan.reference.args!.model, '/models/sft', 'the reference starts from the actor\'s model (the SFT output)');
  t.match(plan.actor.args, { training: { lr: 2e-4 } }, 'the actor\'s LoRA scales against the dpo peak lr');
  t.notOk('beta' in plan.actor.args! || 'schedule' in (plan.actor.args!.training as object), 'DPO beta and the schedule travel per call, not at start-up');
  t.end();
});
