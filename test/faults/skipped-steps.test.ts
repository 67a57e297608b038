// A non-finite loss (or an update skipped for a non-finite gradient norm)
// stops training after checks.maxSkippedSteps such steps in a row, with the
// phase, step, role and loss named, in SFT, RM and PPO; a finite step in
// between resets the count; 0 never stops. The roles are the in-process fakes
// of the driver tests, with their training replies poisoned from a given call.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { defaultConfig, type Config } from '../../src/config/defaults.js';
import type { StepData } from '../../src/data/datasets.js';
import type { RmPairs, Sequences, SftExamples } from '../../src/data/examples.js';
import { runPpo } from '../../src/coordinator/ppo.js';
import { runRm } from '../../src/coordinator/rm.js';
import { runPaths } from '../../src/coordinator/run-dir.js';
import { runSft } from '../../src/coordinator/sft.js';
import { SkippedSteps } from '../../src/coordinator/skipped-steps.js';
import type { CallResult, Roles } from '../../src/runtime/index.js';
import { EOS, fakeRoles, PAD } from '../coordinator/fake-roles.js';

function tmp(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'q-skip-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function seqs(rows: number[][]): Sequences {
  const offsets = new Int32Array(rows.length + 1);
  rows.forEach((r, i) => (offsets[i + 1] = offsets[i] + r.length));
  return { n: rows.length, offsets, ids: Int32Array.from(rows.flat()) };
}
const report = { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } };
const sftData = (n: number): StepData<SftExamples> => ({
  train: { seqs: seqs(Array.from({ length: n }, (_, i) => [5, 6, 100 + i, 7, 8])), promptLens: new Int32Array(n).fill(3) },
  eval: { seqs: seqs([]), promptLens: new Int32Array(0) }, report, padId: PAD,
});
const rmData = (n: number): StepData<RmPairs> => {
  const make = (k: number): RmPairs => ({ chosen: seqs(Array.from({ length: k }, (_, i) => [5, i + 20, 7, 8])), rejected: seqs(Array.from({ length: k }, (_, i) => [5, i + 20, 9])), promptLens: new Int32Array(k).fill(2) });
  return { train: make(n), eval: make(0), report, padId: PAD };
};

/** The fake roles, with the metrics of `method` replies edited by `edit(callNumber, metrics)` (1-based). */
function poisoned(method: string, edit: (n: number, m: Record<string, number>) => void): Roles {
  const { roles } = fakeRoles();
  let n = 0;
  const fix = (r: CallResult & { replies?: CallResult[] }) => {
    n++;
    for (const m of [r.metrics, ...(r.replies ?? []).map((x) => x.metrics)]) edit(n, m);
    return r;
  };
  return new Proxy(roles, {
    get(target, key) {
      if (key !== 'group') return Reflect.get(target, key);
      return (name: string) => {
        const g = target.group(name);
        return new Proxy(g, {
          get(gt, k) {
            if (k !== 'call') return Reflect.get(gt, k);
            return async (m: string, ...rest: unknown[]) => {
              const r = await (gt.call as (...a: unknown[]) => Promise<CallResult>)(m, ...rest);
              return m === method ? fix(r) : r;
            };
          },
        });
      };
    },
  });
}

const config = (edit: (c: Config) => void): Config => {
  const c = defaultConfig();
  c.sft.batchSize = 2; c.rm.batchSize = 2;
  edit(c);
  return c;
};
const quiet = { progress: false as const };

t.test('SkippedSteps: a run of max bad steps throws; a good step resets; 0 never throws', (t) => {
  const s = new SkippedSteps('sft', 'actor', 3);
  s.record('step 1', true, { loss: 2 });
  s.record('step 2', false, { loss: NaN });
  s.record('step 3', false, { loss: 1.5 });
  s.record('step 4', false, { loss: Infinity });
  s.record('step 5', true, { loss: 3 });
  t.throws(() => s.record('step 6', true, { loss: NaN }),
    /sft: training stopped at step 6: the actor's loss NaN; its update was skipped for a non-finite gradient norm \(3 in a row, since step 4\)\. checks\.maxSkippedSteps = 3/);
  const first = new SkippedSteps('rm', 'reward', 1);
  t.throws(() => first.record('step 1', false, { loss: -Infinity }), /rm: training stopped at step 1: the reward's loss -Infinity; its loss is not finite\. checks\.maxSkippedSteps = 1/);
  const never = new SkippedSteps('sft', 'actor', 0);
  for (let i = 1; i < 50; i++) never.record(`step ${i}`, true, { loss: NaN });
  t.pass('0: never stops');
  t.end();
});

t.test('sft: a NaN loss from step 2 on stops at step 4 (3 in a row), with the metrics of those steps written', async (t) => {
  const roles = poisoned('train_sft', (n, m) => { if (n >= 2) { m.loss = NaN; m.grad_norm = NaN; m.skipped = 1; } });
  const rows: { step: number; figures: Record<string, number | null> }[] = [];
  const metrics = { write: (_p: string, step: number, figures: Record<string, number | null>) => rows.push({ step, figures }) };
  await t.rejects(runSft(roles, config(() => {}), sftData(20), join(tmp(t), 'sft'), { ...quiet, metrics }),
    /sft: training stopped at step 4: the actor's loss NaN; its update was skipped for a non-finite gradient norm \(3 in a row, since step 2\)\. checks\.maxSkippedSteps = 3/);
  t.same(rows.map((r) => r.step), [1, 2, 3, 4], 'the bad steps are in the metrics');
  t.equal(rows[3].figures.skipped, 1);
});

t.test('sft: skips that alternate with good steps never stop the run; maxSkippedSteps 0 never stops', async (t) => {
  const roles = poisoned('train_sft', (n, m) => { if (n % 2 === 0) m.skipped = 1; });
  const r = await runSft(roles, config((c) => { c.checks.maxSkippedSteps = 2; }), sftData(20), join(tmp(t), 'a'), quiet);
  t.equal(r.steps, 10);
  const all = poisoned('train_sft', (_n, m) => { m.loss = NaN; m.skipped = 1; });
  const r2 = await runSft(all, config((c) => { c.checks.maxSkippedSteps = 0; }), sftData(20), join(tmp(t), 'b'), quiet);
  t.equal(r2.steps, 10);
});

t.test('rm: the reward role named, at the first step with maxSkippedSteps 1', async (t) => {
  const roles = poisoned('train_rm', (_n, m) => { m.loss = Infinity; });
  await t.rejects(runRm(roles, config((c) => { c.checks.maxSkippedSteps = 1; }), rmData(10), join(tmp(t), 'rm'), quiet),
    /rm: training stopped at step 1: the reward's loss Infinity; its loss is not finite\. checks\.maxSkippedSteps = 1/);
});

t.test('ppo: the role, PPO step and update are named (actor and critic)', async (t) => {
  const ppoConfig = (edit: (c: Config) => void) => config((c) => {
    c.ppo.promptBatchSize = 8; c.ppo.trainBatchSize = 4; c.ppo.maxNewTokens = 5; c.ppo.maxSteps = 3;
    edit(c);
  });
  // The fake reward reads no texts: empty ones of the right length.
  const texts = { decode: (_ids: Int32Array, _mask: Int32Array, B: number) => ({ prompts: Array(B).fill(''), answers: Array(B).fill(''), eos: Array(B).fill(false) }) };
  const data = { prompts: { prompts: seqs(Array.from({ length: 24 }, (_, i) => [3, 4, 100 + i])) }, padId: PAD, eosId: EOS, texts };
  const outs = (dir: string) => {
    const p = runPaths(dir);
    return { actor: p.ppoActor, critic: p.ppoCritic, checkpoints: p.checkpoints, actorSource: null, criticSource: null };
  };
  const actor = poisoned('train_ppo', (n, m) => { if (n >= 2) { m.policy_loss = NaN; m.skipped = 1; } });
  await t.rejects(runPpo(actor, ppoConfig(() => {}), data, outs(tmp(t)), quiet),
    /ppo: training stopped at step 2, actor update 4: the actor's policy_loss NaN; its update was skipped .*\(3 in a row, since step 1, actor update 2\)/);
  const critic = poisoned('train_value', (_n, m) => { m.value_loss = NaN; });
  await t.rejects(runPpo(critic, ppoConfig((c) => { c.checks.maxSkippedSteps = 2; }), data, outs(tmp(t)), quiet),
    /ppo: training stopped at step 1, critic update 2: the critic's value_loss NaN; its loss is not finite \(2 in a row, since step 1, critic update 1\)/);
});
