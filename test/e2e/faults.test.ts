// The fault matrix: `quartet ppo` runs in which role processes are killed
// (SIGKILL) or stopped (SIGSTOP) at chosen calls — while idle, during
// generation, while making experience and while training — end with the
// configured number of steps and exactly the undisturbed run's per-step
// rewards, KL and losses, and byte-identical final weights: each lost role is
// rebuilt from its last checkpoint and the training calls since, and the call
// it was serving goes again. Each loss and recovery is an event in
// metrics.jsonl. The faults are injected by the runtime (runtime.faults), so
// each lands at a known call of a known method.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { quartet } from './quartet.js';
import { makeTinyRun } from './tiny-run.js';

const config = {
  seed: 5,
  data: { maxPromptLen: 16, maxAnswerLen: 8, workers: 1 },
  actor: { devices: ['cpu:0'], threads: 1, lr: 1e-3, warmup: 0, maxRestarts: 6 },
  critic: { devices: ['cpu:1'], threads: 1, lr: 1e-3, warmup: 0, maxRestarts: 6 },
  reference: { devices: ['cpu:0'], threads: 1, maxRestarts: 6 },
  reward: { devices: ['cpu:1'], threads: 1, maxRestarts: 6 },
  // 6 steps of 2 generation batches, a checkpoint every 2: replays land both on checkpoints and on start-up weights.
  ppo: { maxSteps: 6, promptBatchSize: 8, generationBatches: 2, trainBatchSize: 8, maxNewTokens: 8, saveEvery: 2 },
  // Hangs found in 2 s rather than 5.
  runtime: { heartbeatTimeoutMs: 2000 },
};

interface Row { phase: string; step: number; event?: string; role?: string; seconds?: number; replayed?: number; [k: string]: unknown }

function lines(runDir: string): Row[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
}

/** The figures that must not change: everything a step logs except times and rates. */
function figures(runDir: string): Record<string, unknown>[] {
  return lines(runDir).filter((r) => r.phase === 'ppo' && r.event === undefined).map((r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (!/time|per_s/.test(k)) out[k] = v;
    return out;
  });
}

const FAULTS: Record<string, string[]> = {
  // kill -9 of every role, idle and in each phase of a step.
  kill: [
    'actor/0:generate:3:SIGKILL:5', // during generation (step 2)
    'critic/0:values:3:SIGKILL', // idle, before making experience (step 2)
    'reference/0:logprobs:4:SIGKILL:5', // during experience (step 2)
    'reward/0:score:6:SIGKILL:5', // during experience (step 3)
    'critic/0:train_value:4:SIGKILL:5', // during training (step 4)
    'actor/0:train_ppo:6:SIGKILL:5', // during training (step 5), one after a checkpoint
    'actor/0:logprobs:8:SIGKILL', // idle (step 4)
    'reward/0:score:9:SIGKILL', // idle (step 5)
    'reference/0:logprobs:10:SIGKILL', // idle (step 5)
  ],
  // SIGSTOP of every role during a call: found by its silent heartbeat thread.
  stop: [
    'actor/0:train_ppo:3:SIGSTOP:5',
    'critic/0:values:5:SIGSTOP:5',
    'reference/0:logprobs:7:SIGSTOP:5',
    'reward/0:score:9:SIGSTOP:5',
  ],
};

t.test('every role killed or stopped at every phase: the run ends exactly as the undisturbed one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'q-e2e-faults-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const world = makeTinyRun(join(dir, 'world'), { rows: 400, seed: 5 });
  const run = async (name: string, faults: string[]) => {
    const cfgFile = join(dir, `${name}.json`);
    writeFileSync(cfgFile, JSON.stringify({ ...config, runtime: { ...config.runtime, faults } }));
    const out = join(dir, name);
    const r = await quartet(t, ['ppo', '--config', cfgFile, '--actor-model', world.model, '--reward-model', world.model, '--data', world.data, '--output-dir', out], { timeoutMs: 400_000 });
    t.equal(r.code, 0, `${name}: quartet ppo exits 0 (stderr tail: ${r.stderr.slice(-1500)})`);
    return out;
  };

  const calm = await run('calm', []);
  const want = figures(calm);
  t.equal(want.length, 6, 'six steps');
  const weights = (d: string, role: string) => readFileSync(join(d, 'ppo', role, 'model.safetensors'));

  for (const [name, faults] of Object.entries(FAULTS)) {
    const out = await run(name, faults);
    t.same(figures(out), want, `${name}: every step's reward, KL, losses and clip fractions equal the undisturbed run's bit for bit`);
    t.ok(weights(out, 'actor').equals(weights(calm, 'actor')), `${name}: the final actor is byte-identical`);
    t.ok(weights(out, 'critic').equals(weights(calm, 'critic')), `${name}: the final critic is byte-identical`);
    const events = lines(out).filter((r) => r.event !== undefined);
    const down = events.filter((e) => e.event === 'role_down');
    const back = events.filter((e) => e.event === 'role_restored');
    t.equal(down.length, faults.length, `${name}: each fault is a role_down event`);
    t.equal(back.length, faults.length, `${name}: and a role_restored event`);
    t.ok(back.every((e) => typeof e.seconds === 'number' && e.seconds > 0), `${name}: with its cost (${back.map((e) => `${e.role} ${(e.seconds as number).toFixed(2)} s, ${e.replayed} replayed`).join('; ')})`);
    t.ok(back.some((e) => (e.replayed as number) > 0), `${name}: some recoveries replayed training calls`);
    if (name === 'stop') {
      const hung = down.filter((e) => /silent for [\d.]+ s/.test(String(e.why)));
      t.equal(hung.length, faults.length, 'stop: every stopped role was found by its silence');
      // Found within the 2 s heartbeat timeout plus a tick; generous on a loaded 2-core machine.
      t.ok(hung.every((e) => Number(/silent for ([\d.]+) s/.exec(String(e.why))![1]) < 6), `stop: found after ${hung.map((e) => /silent for ([\d.]+) s/.exec(String(e.why))![1]).join(', ')} s of silence`);
    }
  }

  // Preemption: SIGTERM checkpoints every role at the step it stopped at, and --resume ends as the undisturbed run.
  const cfgFile = join(dir, 'calm.json');
  const pre = join(dir, 'preempted');
  const args = ['ppo', '--config', cfgFile, '--actor-model', world.model, '--reward-model', world.model, '--data', world.data, '--output-dir', pre];
  const first = await quartet(t, args, { killOn: /ppo step 3\/6/, killSignal: 'SIGTERM' });
  t.equal(first.code, 143, `SIGTERM: exit code 143 (stderr tail: ${first.stderr.slice(-800)})`);
  t.match(first.stdout, /stopped in .*; continue with: npx quartet ppo --output-dir .* --resume/);
  const resumed = await quartet(t, ['ppo', '--output-dir', pre, '--resume']);
  t.equal(resumed.code, 0, `--resume finishes (stderr tail: ${resumed.stderr.slice(-800)})`);
  const got = figures(pre);
  t.same(got, want, 'the preempted and resumed run logs the undisturbed figures');
});
