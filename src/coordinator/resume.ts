// What --resume reads: the run's state.json (which steps are done and where
// their outputs are) and the newest complete PPO checkpoint (its state.json
// is written after the models, so a checkpoint cut short by a kill is skipped).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StepName } from '../config/defaults.js';
import { PPO_STATE_FILE, type PpoResume, type PpoState } from './ppo.js';
import { newestCompleteStep, writeJsonAtomic, type RunPaths } from './run-dir.js';

export const RUN_STATE_VERSION = 1;

export interface RunState {
  version: number;
  /** Steps finished, in the order they ran. */
  done: StepName[];
  /** Each finished step's output folder. */
  outputs: Partial<Record<StepName, string>>;
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${what} ${path}: cannot be read (${(err as Error).message})`);
  }
}

/** The run's state, or null when the run directory has none (a fresh run). */
export function readRunState(paths: RunPaths): RunState | null {
  if (!existsSync(paths.state)) return null;
  const s = readJson(paths.state, 'run state') as Partial<RunState>;
  if (s.version !== RUN_STATE_VERSION || !Array.isArray(s.done) || typeof s.outputs !== 'object' || s.outputs === null)
    throw new Error(`run state ${paths.state}: not a state file of this version (expected version ${RUN_STATE_VERSION} with 'done' and 'outputs')`);
  return s as RunState;
}

export function markStepDone(paths: RunPaths, state: RunState, step: StepName, output: string): RunState {
  const next: RunState = { ...state, done: [...state.done.filter((d) => d !== step), step], outputs: { ...state.outputs, [step]: output } };
  writeJsonAtomic(paths.state, next);
  return next;
}

export function freshRunState(): RunState {
  return { version: RUN_STATE_VERSION, done: [], outputs: {} };
}

function checkPpoState(s: unknown, path: string): PpoState {
  const o = s as PpoState;
  const pos = (p: unknown) => typeof p === 'object' && p !== null && Number.isInteger((p as { epoch: number }).epoch) && Number.isInteger((p as { batch: number }).batch);
  if (!Number.isInteger(o?.step) || !pos(o.prompts) || !(o.ptx === null || pos(o.ptx)) || !Number.isInteger(o.actorUpdates) || !Number.isInteger(o.criticUpdates))
    throw new Error(`ppo checkpoint ${path}: not a PPO state (needs step, prompts {epoch, batch}, ptx, actorUpdates, criticUpdates)`);
  return o;
}

/** The newest complete checkpoint under `paths.checkpoints`, or null. */
export function latestPpoCheckpoint(paths: RunPaths): PpoResume | null {
  const dir = newestCompleteStep(paths.checkpoints, PPO_STATE_FILE);
  if (dir === null) return null;
  const file = join(dir, PPO_STATE_FILE);
  return { dir, state: checkPpoState(readJson(file, 'ppo checkpoint'), file) };
}
