// `train`: the three steps in order (ARCHITECTURE.md §3), each step's output
// feeding the next as DeepSpeed-Chat's e2e_rlhf.py does: the actor and the
// reference start from the SFT output, the critic and the reward from the RM
// output. A 'dpo' step (instead of rm and ppo) trains the SFT output against
// itself, frozen, as the reference. Each step starts the runtime with only the roles it needs (loading
// its data meanwhile) and shuts it down after. With config.resume, finished
// steps are skipped and PPO continues from its newest checkpoint.
import { appendFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, StepName } from '../config/defaults.js';
import { placementPlan, roleModel } from '../config/plan.js';
import { saveResolvedConfig } from '../config/print.js';
import { dataContext, loadPpoPrompts, loadRmData, loadSftData } from '../data/datasets.js';
import { checkModelFolder } from '../data/model-folder.js';
import { loadPtxBlocks } from '../data/ptx.js';
import { ScoreDecoder } from '../data/score-texts.js';
import { writeReport } from '../report/report.js';
import { readSummary, writeSummary, type RunSummary } from '../report/summary.js';
import { supervisionOptions } from './supervision.js';
import { runKeysIn, startRuntime, writeNodeKeys, type PlanInput, type Roles } from '../runtime/index.js';
import { MetricsWriter } from './metrics.js';
import { runDpo, type DpoResult } from './dpo.js';
import { runPpo, type PpoHooks, type PpoResult } from './ppo.js';
import { preflight, type PreflightResult } from './preflight.js';
import { freshRunState, latestPpoCheckpoint, markStepDone, readRunState, type RunState } from './resume.js';
import { StepCheckpoints, type StepResume } from './step-checkpoints.js';
import { runRm, type RmResult } from './rm.js';
import { copyTokenizerFiles, publishModel, runPaths, stepCheckpointsDir, type RunPaths } from './run-dir.js';
import { runSft, type SftResult } from './sft.js';
import { ensureWritableDir, makeDirs, onDisk } from '../util/disk.js';

/** A step's running roles and how to stop them. */
export interface StepRoles {
  roles: Roles;
  /** `again`: a later step of this run follows (node agents of other machines wait to rejoin). */
  close(again?: boolean): Promise<void>;
}

/** Starts the roles of a step's placement plan; the default starts role processes through the runtime. */
export type StartRoles = (plan: PlanInput, step: StepName, paths: RunPaths) => Promise<StepRoles>;

export interface TrainOptions extends PpoHooks {
  startRoles?: StartRoles;
  /** Echo every role output line (default: only to the role's log file). */
  echoRoles?: (line: string) => void;
  /** The config keys the user set (loadConfig's `explicit`): the other lengths may shrink to fit the models; undefined: none may. */
  explicit?: ReadonlySet<string>;
}

export interface TrainResult {
  runDir: string;
  sft?: SftResult;
  rm?: RmResult;
  ppo?: PpoResult;
  dpo?: DpoResult;
  /** Steps skipped because a resumed run had finished them. */
  skipped: StepName[];
}

export function runtimeRoles(echo?: (line: string) => void, runtime?: Config['runtime'], reward?: Config['reward']): StartRoles {
  return async (plan, step, paths) => {
    // With other machines, every step's coordinator listens at the same address with the run's keys.
    const remote = runtime?.listen ? { listen: runtime.listen, keys: runKeysIn(join(paths.root, 'keys', 'run.json')), nodeTimeoutMs: runtime.nodeTimeout * 1000 } : {};
    const supervision = runtime ? supervisionOptions(runtime, step, paths.metrics, reward?.timeoutMs) : {};
    const rt = await startRuntime(plan, { runDir: paths.root, echo: echo ?? null, ...remote, ...supervision });
    return { roles: rt, close: (again) => rt.shutdown({ again }) };
  };
}

/** Starts the roles and loads the data at the same time; on a failure of either, nothing is left running. */
async function startWith<D>(start: () => Promise<StepRoles>, load: () => Promise<D>): Promise<[StepRoles, D]> {
  const [r, d] = await Promise.allSettled([start(), load()]);
  if (r.status === 'fulfilled' && d.status === 'fulfilled') return [r.value, d.value];
  if (r.status === 'fulfilled') await r.value.close();
  throw r.status === 'rejected' ? r.reason : (d as PromiseRejectedResult).reason;
}

/**
 * The model folder a step needs, checked before any role process starts: it
 * exists and its config.json names a supported family (a bad folder fails in
 * milliseconds, with the key that named it, rather than in a role's log).
 */
function need(value: string | null, key: string, step: StepName, flag: string): string {
  if (value === null) throw new Error(`${step}: ${key} is not set; give a Hugging Face model folder (${flag} DIR or --${key}=DIR)`);
  if (!existsSync(value)) throw new Error(`${step}: ${key} = '${value}' does not exist`);
  try {
    checkModelFolder(value);
  } catch (err) {
    throw new Error(`${step}: ${key} = '${value}': ${(err as Error).message}`);
  }
  return value;
}

/** Where a finished step's output goes in the config of the steps after it. */
function feedForward(cfg: Config, step: StepName, output: string): void {
  if (step === 'sft') cfg.actor.model = output;
  if (step === 'rm') cfg.reward.model = output;
}

/**
 * The run's figures at a glance for the report (summary.json), merged into
 * what is there (the demo adds its gold scores and samples).
 */
function writeRunSummary(paths: RunPaths, r: TrainResult, times: Record<string, number>): void {
  const file = join(paths.root, 'summary.json');
  let summary: RunSummary = {};
  if (existsSync(file)) summary = readSummary(file).summary;
  if (r.rm) summary.rm = { ...summary.rm, accuracy: r.rm.evalAfter.accuracy ?? undefined, pairs: r.rm.trainPairs };
  if (r.dpo) {
    const round = (v: number | null) => (v === null ? undefined : Number(v.toFixed(4)));
    summary.dpo = {
      eval_accuracy: round(r.dpo.evalAfter.accuracy), eval_margin: round(r.dpo.evalAfter.margin),
      eval_loss_before: round(r.dpo.evalBefore.loss), eval_loss_after: round(r.dpo.evalAfter.loss), pairs: r.dpo.trainPairs,
    };
  }
  if (r.ppo) {
    summary.reward = { ...summary.reward, before: r.ppo.firstReward ?? undefined, after: r.ppo.lastReward ?? undefined };
    if (r.ppo.lastKl !== null) summary.kl = { final: r.ppo.lastKl };
  }
  const { total, ...phases } = times;
  summary.time = { ...summary.time, total_s: total, phases_s: phases, ...(r.ppo?.meanStepSeconds ? { per_step_s: r.ppo.meanStepSeconds } : {}) };
  writeSummary(file, summary);
}

/** A step stopped by the caller is not marked done: --resume continues it from its last checkpoint. */
function stopped(opts: TrainOptions, step: StepName, log: (line: string) => void): boolean {
  if (!opts.shouldStop?.()) return false;
  log(`${step}: stopped early; --resume continues the run`);
  return true;
}

export async function train(config: Config, opts: TrainOptions = {}): Promise<TrainResult> {
  const paths = runPaths(config.outputDir);
  let state = readRunState(paths) ?? freshRunState();
  const clash = state.done.filter((d) => config.steps.includes(d));
  if (!config.resume && clash.length > 0)
    throw new Error(`${paths.root} already holds a run with step(s) ${clash.join(', ')} done; pass --resume to continue it, or choose another --output-dir`);
  const trainLog = join(paths.logs, 'train.log');
  const stamp = (line: string) => `${new Date().toISOString()} ${line}\n`;
  // The whole run is checked before the run directory is made or any process starts: a mistake
  // leaves no folder behind (and in an existing run directory, a line in its train.log).
  let checked: PreflightResult;
  try {
    checked = preflight(config, state, opts.explicit);
  } catch (err) {
    if (existsSync(paths.logs)) appendFileSync(trainLog, stamp(`failed: ${(err as Error).message}`));
    throw err;
  }
  // A run directory that cannot be written fails now, with the path and errno named (after the check, so a mistake leaves no folder).
  ensureWritableDir(paths.root, 'outputDir');
  makeDirs(paths.logs);
  // The driver's lines go to the caller and, with a time, to <run>/logs/train.log beside the roles' logs.
  const log = (line: string) => {
    onDisk('append to', trainLog, () => appendFileSync(trainLog, stamp(line)));
    opts.log?.(line);
  };
  for (const note of checked.notes) log(note);
  try {
    return await runSteps(checked.config, opts, paths, state, log);
  } catch (err) {
    appendFileSync(trainLog, stamp(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
    throw err;
  }
}

async function runSteps(config: Config, opts: TrainOptions, paths: RunPaths, state: RunState, log: (line: string) => void): Promise<TrainResult> {
  saveResolvedConfig(paths.root, config);
  const metrics = new MetricsWriter(paths.metrics);
  const start = opts.startRoles ?? runtimeRoles(opts.echoRoles, config.runtime, config.reward);
  const hooks = { ...opts, log, metrics: opts.metrics ?? metrics };
  const cfg: Config = structuredClone(config);
  // Steps done in this run directory by an earlier command (`quartet sft`, then `quartet rm`, then
  // `quartet ppo` with the same --output-dir) feed the models that were not given.
  for (const step of state.done) {
    const out = state.outputs[step];
    if (!out || config.steps.includes(step)) continue;
    if (step === 'sft' && cfg.actor.model === null) cfg.actor.model = out;
    if (step === 'rm' && cfg.reward.model === null) cfg.reward.model = out;
  }
  if (config.runtime.listen) {
    // The key file other machines need exists from the start, and the user is told how to use it
    // (a step that places roles on a node waits up to runtime.nodeTimeout for it to join).
    const nodeKeys = writeNodeKeys(join(paths.root, 'keys', 'node.json'), runKeysIn(join(paths.root, 'keys', 'run.json')));
    const at = config.runtime.listen.replace(/^tcp:\/\/(0\.0\.0\.0|\*)(?=:)/, 'tcp://THIS_HOST');
    log(`other machines: copy ${nodeKeys} there and run: npx quartet node --coordinator ${at} --keys node.json --name NAME`);
  }
  const result: TrainResult = { runDir: paths.root, skipped: [] };
  /** A later step of this command will run (and its coordinator wants the node agents back), unless stopped. */
  const goesOn = (step: StepName) => !opts.shouldStop?.() && config.steps.slice(config.steps.indexOf(step) + 1).some((s) => !(state.done.includes(s) && state.outputs[s]));
  /**
   * The checkpoints of a one-model step and, with --resume, the newest one;
   * without --resume an earlier attempt's are removed. Its metrics lines
   * after that checkpoint are dropped (they are about to be written again).
   */
  const stepResume = (step: 'sft' | 'rm' | 'dpo', role: 'actor' | 'reward'): StepResume => {
    const checkpoints = new StepCheckpoints(stepCheckpointsDir(paths, step), role, cfg[step].saveEvery, (line) => log(`${step}: ${line}`), cfg.keepCheckpoints);
    const from = config.resume ? checkpoints.latest() : null;
    if (!config.resume) checkpoints.clear();
    metrics.truncateAfter(step, from ? from.state.step : -1);
    return { checkpoints, from };
  };
  const times: Record<string, number> = {};
  const runStart = performance.now();

  for (const step of config.steps) {
    if (state.done.includes(step) && state.outputs[step]) {
      log(`${step}: done in an earlier run; using ${state.outputs[step]}`);
      feedForward(cfg, step, state.outputs[step]!);
      result.skipped.push(step);
      continue;
    }
    const stepStart = performance.now();
    if (step === 'sft') {
      const model = need(cfg.actor.model, 'actor.model', step, '--actor-model');
      const ck = stepResume('sft', 'actor');
      const [sr, data] = await startWith(() => start(placementPlan(cfg, 'sft'), 'sft', paths), () => loadSftData(dataContext(cfg, model, log)));
      let ok = false;
      try {
        result.sft = await runSft(sr.roles, cfg, data, paths.sft, hooks, ck);
        ok = true;
      } finally {
        await sr.close(ok && goesOn(step));
      }
      if (stopped(opts, step, log)) break;
      copyTokenizerFiles(model, paths.sft);
      state = markStepDone(paths, state, step, paths.sft);
      publishModel(paths.sft, paths.actor);
      feedForward(cfg, step, paths.sft);
    } else if (step === 'rm') {
      const model = need(cfg.reward.model, 'reward.model', step, '--reward-model');
      const ck = stepResume('rm', 'reward');
      const [sr, data] = await startWith(() => start(placementPlan(cfg, 'rm'), 'rm', paths), () => loadRmData(dataContext(cfg, model, log)));
      let ok = false;
      try {
        result.rm = await runRm(sr.roles, cfg, data, paths.rm, hooks, ck);
        ok = true;
      } finally {
        await sr.close(ok && goesOn(step));
      }
      if (stopped(opts, step, log)) break;
      copyTokenizerFiles(model, paths.rm);
      state = markStepDone(paths, state, step, paths.rm);
      publishModel(paths.rm, paths.reward);
      feedForward(cfg, step, paths.rm);
    } else if (step === 'dpo') {
      const model = need(cfg.actor.model, 'actor.model', step, '--actor-model');
      if (cfg.reference.model !== null) need(cfg.reference.model, 'reference.model', step, '--reference.model');
      const ck = stepResume('dpo', 'actor');
      const output = join(paths.root, 'dpo');
      const [sr, data] = await startWith(() => start(placementPlan(cfg, 'dpo'), 'dpo', paths), () => loadRmData(dataContext(cfg, model, log)));
      let ok = false;
      try {
        result.dpo = await runDpo(sr.roles, cfg, data, output, hooks, ck);
        ok = true;
      } finally {
        await sr.close(ok && goesOn(step));
      }
      if (stopped(opts, step, log)) break;
      copyTokenizerFiles(model, output);
      state = markStepDone(paths, state, step, output);
      publishModel(output, paths.actor);
    } else {
      const actorModel = need(cfg.actor.model, 'actor.model', step, '--actor-model');
      if (cfg.reward.kind === 'model') need(cfg.reward.model, 'reward.model', step, '--reward-model');
      // A custom scorer leaves the critic without a reward model to start from (config validation says so too).
      else if (cfg.ppo.algorithm === 'ppo') need(roleModel(cfg, 'critic'), 'critic.model', step, '--critic.model');
      const resume = config.resume ? latestPpoCheckpoint(paths) : null;
      if (!config.resume && existsSync(paths.checkpoints)) {
        // Checkpoints of an earlier, unfinished PPO attempt in this run would be taken for this one's by a later --resume.
        log(`ppo: starting afresh; removing the checkpoints of an earlier attempt in ${paths.checkpoints}`);
        rmSync(paths.checkpoints, { recursive: true, force: true });
      }
      metrics.truncateAfter('ppo', resume?.state.step ?? 0);
      const load = async () => {
        const ctx = dataContext(cfg, actorModel, log);
        const prompts = await loadPpoPrompts(ctx);
        const ptx = cfg.ppo.ptxCoef > 0 ? (await loadPtxBlocks(ctx)).blocks : null;
        return { prompts: prompts.train, padId: prompts.padId, eosId: prompts.eosId ?? null, ptx, texts: ScoreDecoder.load(actorModel) };
      };
      const [sr, data] = await startWith(() => start(placementPlan(cfg, 'ppo'), 'ppo', paths), load);
      let ok = false;
      try {
        result.ppo = await runPpo(sr.roles, cfg, data, {
          actor: paths.ppoActor, critic: paths.ppoCritic, checkpoints: paths.checkpoints,
          actorSource: actorModel, criticSource: roleModel(cfg, 'critic'),
        }, hooks, resume ?? undefined);
        ok = true;
      } finally {
        await sr.close(ok && goesOn(step));
      }
      if (stopped(opts, step, log)) break;
      state = markStepDone(paths, state, step, paths.ppoActor);
      publishModel(paths.ppoActor, paths.actor);
      if (existsSync(paths.ppoCritic)) publishModel(paths.ppoCritic, paths.critic);
    }
    times[step] = (performance.now() - stepStart) / 1000;
  }
  times.total = (performance.now() - runStart) / 1000;
  writeRunSummary(paths, result, times);
  try {
    const rep = writeReport(paths.root);
    log(`report: ${paths.root}/report.html${rep.problems.length ? ` (${rep.problems.length} problem(s) in the metrics)` : ''}`);
  } catch (err) {
    log(`report: not written (${(err as Error).message})`);
  }
  return result;
}
