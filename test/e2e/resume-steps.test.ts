// Resuming the one-model steps through real role processes: `quartet sft`
// killed (SIGKILL) after a checkpoint and resumed with --resume ends with the
// same losses at every step as the uninterrupted run (dropout on: the
// checkpoint carries the dropout generator too); `quartet rm` stopped with
// Ctrl-C checkpoints the step it stopped at and --resume finishes the run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { quartet } from './quartet.js';
import { makeTinyRun } from './tiny-run.js';

const config = {
  seed: 2,
  data: { maxPromptLen: 16, maxAnswerLen: 14, workers: 1 },
  actor: { devices: ['cpu:0'], threads: 1, maxRestarts: 0 },
  reward: { devices: ['cpu:1'], threads: 1, lr: 3e-3, weightDecay: 0, maxRestarts: 0 },
  sft: { lr: 3e-3, batchSize: 8, epochs: 4, maxSteps: 24, saveEvery: 6, evalEvery: 8, dropout: true },
  rm: { batchSize: 8, maxSteps: 6, epochs: 4 },
};

interface Row { phase: string; step: number; loss?: number }

function rows(runDir: string, phase: string): Row[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row).filter((r) => r.phase === phase);
}

t.test('sft killed after a checkpoint resumes to the same losses; rm stopped by Ctrl-C resumes from where it stopped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'q-e2e-resume-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const world = makeTinyRun(join(dir, 'world'), { rows: 300, seed: 2 });
  const cfgFile = join(dir, 'cfg.json');
  writeFileSync(cfgFile, JSON.stringify(config));
  const sft = (out: string) => ['sft', '--config', cfgFile, '--actor-model', world.model, '--data', world.data, '--output-dir', out];

  const full = join(dir, 'full');
  const f = await quartet(t, sft(full));
  t.equal(f.code, 0, `quartet sft exits 0 (stderr tail: ${f.stderr.slice(-1000)})`);
  const want = rows(full, 'sft');
  t.same(want.map((r) => r.step), Array.from({ length: 25 }, (_, i) => i), 'an evaluation before training and 24 steps (over 3 epochs of 8 batches)');

  const cut = join(dir, 'cut');
  const killed = await quartet(t, sft(cut), { killOn: /sft: checkpoint .*step-6/ });
  t.equal(killed.signal, 'SIGKILL', 'the first attempt was killed mid-SFT');
  t.ok(existsSync(join(cut, 'checkpoints', 'sft', 'step-6', 'state.json')), 'the checkpoint of step 6 is complete');
  // The kill lands within a step or two of the line; a checkpoint taken meanwhile (step 12) would be the newest.
  const newest = existsSync(join(cut, 'checkpoints', 'sft', 'step-12', 'state.json')) ? 12 : 6;
  const resumed = await quartet(t, ['sft', '--output-dir', cut, '--resume']);
  t.equal(resumed.code, 0, `--resume finishes (stderr tail: ${resumed.stderr.slice(-1000)})`);
  t.match(resumed.stdout, new RegExp(`sft: resumed from .*step-${newest} after step ${newest}`), 'resumed from the newest complete checkpoint');
  const got = rows(cut, 'sft');
  t.same(got.map((r) => r.step), want.map((r) => r.step), 'every step once: the lines the killed attempt wrote after its checkpoint were dropped');
  const worst = Math.max(...got.slice(1).map((r, i) => Math.abs(r.loss! - want[i + 1].loss!)));
  t.ok(worst < 1e-5, `training losses of the resumed run equal the uninterrupted run's at every step, dropout included (max |diff| ${worst.toExponential(2)})`);

  const rm = join(dir, 'rm');
  const rmArgs = ['rm', '--config', cfgFile, '--reward-model', world.model, '--data', world.data, '--output-dir', rm];
  const stopped = await quartet(t, rmArgs, { killOn: /rm: before training/, killSignal: 'SIGINT' });
  t.equal(stopped.code, 130, `exit code 130 after Ctrl-C (stderr tail: ${stopped.stderr.slice(-800)})`);
  const at = rows(rm, 'rm').filter((r) => r.step > 0).length;
  t.ok(at >= 1 && at < 6, `stopped after step ${at} of 6`);
  t.ok(existsSync(join(rm, 'checkpoints', 'rm', `step-${at}`, 'state.json')), 'a checkpoint at the step it stopped');
  const again = await quartet(t, ['rm', '--output-dir', rm, '--resume']);
  t.equal(again.code, 0, `--resume finishes (stderr tail: ${again.stderr.slice(-800)})`);
  t.match(again.stdout, new RegExp(`rm: resumed from .*step-${at} after step ${at}`));
  t.same(rows(rm, 'rm').map((r) => r.step), [0, 1, 2, 3, 4, 5, 6], 'every step once');
});
