// `npm run bench -- recovery [--json] [--steps N]`: what a role's death costs
// and what keeping the replay log costs, on the `ppo` benchmark's tiny config
// (4 layers, C 256, V 8192; batch 8, prompt 64 + 64 sampled tokens; roles as
// processes on 2 cores, a checkpoint every 2 steps). For each role, one run in
// which that role is killed (SIGKILL) just before its call in step 4: the time
// from the kill to the role serving again with its state rebuilt, and from the
// kill to the end of the step it fell in, beside an undisturbed step. The
// baseline of the replay log is a run without it: its cost is the time spent
// copying training calls into it (measured inside the runtime) and the memory
// it held at most.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../src/config/defaults.js';
import { benchConfig } from './ppo.js';
import { placementPlan } from '../src/config/plan.js';
import { PpoDriver } from '../src/coordinator/ppo.js';
import { runPaths } from '../src/coordinator/run-dir.js';
import { initModelFolder } from '../src/models/init.js';
import { ScoreDecoder } from '../src/data/score-texts.js';
import { startRuntime, type ReplicaStats, type RuntimeEvent } from '../src/runtime/index.js';
import { Reporter, type BenchOptions } from './report.js';

const SHAPE = { layers: 4, heads: 4, hidden: 256, vocab: 8192, batch: 8, prompt: 64, newTokens: 64 };

/** The call that ends each role's life in its run: its first call of step 4, after a checkpoint at step 2 and the training calls of step 3 (one call of each method per step). */
const KILLS: Record<string, string> = {
  actor: 'actor/0:generate:4:SIGKILL',
  critic: 'critic/0:values:4:SIGKILL',
  reference: 'reference/0:logprobs:4:SIGKILL',
  reward: 'reward/0:score:4:SIGKILL',
};

interface RunResult {
  stepEnds: number[];
  stepSeconds: number[];
  events: (RuntimeEvent & { at: number })[];
  stats: ReplicaStats[];
}

/** The ppo benchmark's config (split layout), with restarts to recover with and a checkpoint every 2 steps. */
function config(dir: string, steps: number): Config {
  const c = benchConfig(dir, 'split');
  for (const role of ['actor', 'critic', 'reference', 'reward'] as const) c[role].maxRestarts = 2;
  Object.assign(c.ppo, { maxSteps: steps, saveEvery: 2 });
  return c;
}

async function ppoRun(steps: number, faults: string[]): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'q-bench-recovery-'));
  try {
    initModelFolder(join(dir, 'model'), { modelType: 'gpt2', layers: SHAPE.layers, hidden: SHAPE.hidden, heads: SHAPE.heads, vocab: SHAPE.vocab, maxPositions: 256, seed: 1234 });
    const c = config(dir, steps);
    let s = 1234;
    const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) % (SHAPE.vocab - 1);
    const n = SHAPE.batch * steps;
    const ids = Int32Array.from({ length: n * SHAPE.prompt }, rand);
    const offsets = Int32Array.from({ length: n + 1 }, (_, i) => i * SHAPE.prompt);
    const events: RunResult['events'] = [];
    const rt = await startRuntime(placementPlan(c, 'ppo'), { runDir: dir, faults, onEvent: (e) => events.push({ ...e, at: performance.now() }) });
    try {
      const stepEnds: number[] = [], stepSeconds: number[] = [];
      const paths = runPaths(dir);
      const d = new PpoDriver(rt, c, { prompts: { prompts: { n, offsets, ids } }, padId: SHAPE.vocab - 1, eosId: SHAPE.vocab - 1, texts: ScoreDecoder.load(c.actor.model!) },
        { actor: paths.ppoActor, critic: paths.ppoCritic, checkpoints: paths.checkpoints, actorSource: null, criticSource: null },
        { progress: false, metrics: { write: (_p, _s, f) => { stepEnds.push(performance.now()); stepSeconds.push(f.time_step ?? 0); } } });
      await d.run();
      return { stepEnds, stepSeconds, events, stats: await rt.stats() };
    } finally {
      await rt.shutdown();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

export async function run(opts: BenchOptions): Promise<void> {
  const steps = Number(option(opts.args, '--steps', '5'));
  if (!Number.isInteger(steps) || steps < 5) throw new Error('bench recovery: --steps must be an integer >= 5 (the kill lands in step 4)');
  const rep = new Reporter(opts, 'undisturbed step');
  const calm = await ppoRun(steps, []);
  const calmStep = calm.stepSeconds.slice(1).reduce((a, b) => a + b, 0) / (steps - 1);
  for (const [role, fault] of Object.entries(KILLS)) {
    const r = await ppoRun(steps, [fault]);
    const down = r.events.find((e) => e.event === 'role_down');
    const back = r.events.find((e) => e.event === 'role_restored');
    if (!down || !back) throw new Error(`bench recovery: the ${role} fault did not fire (${JSON.stringify(r.events)})`);
    const nextStep = r.stepEnds.find((t) => t > down.at)!;
    const toStep = (nextStep - down.at) / 1000;
    rep.add({
      name: `kill -9 ${role} (idle, step 4)`,
      figures: { to_serving_s: back.seconds!, replayed: back.replayed!, to_step_end_s: toStep, step_s: calmStep },
      // How many undisturbed steps the fault costs: (kill -> end of its step) over a step.
      ratio: calmStep / toStep,
    });
  }
  for (const st of calm.stats.filter((x) => x.replay.peakBytes > 0)) {
    const total = calm.stepSeconds.reduce((a, b) => a + b, 0) * 1000;
    rep.add({
      name: `replay log of ${st.role} (${steps} steps, checkpoint every 2)`,
      figures: { peak_kb: st.replay.peakBytes / 1024, copy_ms_per_step: st.replay.recordMs / steps, share_of_step_pct: (100 * st.replay.recordMs) / total },
    });
  }
  rep.finish(`recovery: a role killed (SIGKILL) before its call in step 4 of ${steps} PPO steps of the tiny config (4 roles as processes on 2 cores); to_serving: kill -> rebuilt role serving; to_step_end: kill -> end of that step; ratio = undisturbed step / to_step_end. Replay log cost vs none: the copies it makes and the memory it holds`);
}
