// Checkpoints inside the one-model training steps (SFT, RM, DPO), so that a
// crash or Ctrl-C loses at most `saveEvery` optimizer steps: the trained
// model with its optimizer state, and the position in the data, in
// <run>/checkpoints/<step>/step-N/. PPO has its own (ppo.ts), with two models
// and more position to keep.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BatchIterator, IteratorState } from '../data/batches.js';
import type { Roles } from '../runtime/index.js';
import { makeDirs } from '../util/disk.js';
import { newestCompleteStep, pruneCheckpoints, writeJsonAtomic } from './run-dir.js';

export const STEP_STATE_FILE = 'state.json';

export interface StepPosition {
  /** Optimizer steps done: the position in the learning-rate schedule too. */
  step: number;
  /** Position of the training batch iterator after those steps. */
  batches: IteratorState;
  /** The held-out figures taken before training (kept so a resumed run reports them). */
  evalBefore: unknown;
}

/** What a step driver is given: its checkpoints, and the one to continue from (--resume). */
export interface StepResume {
  checkpoints?: StepCheckpoints;
  from?: StepCheckpoint | null;
}

export interface StepCheckpoint {
  dir: string;
  state: StepPosition;
}

/**
 * The checkpoints of one step driver: `role` is the group it trains (replica
 * 0 saves; every replica loads), `every` the cadence (0: only when stopped early).
 */
export class StepCheckpoints {
  private last = -1;

  /** `keep`: checkpoints kept, the newest (0: all). */
  constructor(readonly dir: string, private readonly role: string, private readonly every: number, private readonly log: (line: string) => void = () => {},
    private readonly keep = 0) {}

  /** The newest complete checkpoint (its state.json is written after the model), or null. */
  latest(): StepCheckpoint | null {
    const dir = newestCompleteStep(this.dir, STEP_STATE_FILE);
    return dir === null ? null : { dir, state: readPosition(join(dir, STEP_STATE_FILE)) };
  }

  /** Removes the checkpoints of an earlier attempt, which a later --resume would otherwise take for this one's. */
  clear(): void {
    if (!existsSync(this.dir)) return;
    this.log(`removing the checkpoints of an earlier attempt in ${this.dir}`);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Loads the checkpoint's model and optimizer state into every replica and puts the iterator where it was. */
  async restore(roles: Roles, from: StepCheckpoint, it: BatchIterator): Promise<void> {
    it.restore(from.state.batches);
    await roles.group(this.role).broadcast('load', { meta: { dir: join(from.dir, 'model'), optimizer: true } });
    this.last = from.state.step;
  }

  /** After optimizer step `step`: checkpoints when the cadence says so (never at the last step: the final save follows). */
  async afterStep(roles: Roles, pos: StepPosition, total: number): Promise<void> {
    if (this.every > 0 && pos.step % this.every === 0 && pos.step < total) await this.save(roles, pos);
  }

  /** When the run stops early: a checkpoint at this very step, unless there is one or nothing was trained since the start. */
  async onStop(roles: Roles, pos: StepPosition, startedAt: number): Promise<void> {
    if (pos.step > startedAt && pos.step !== this.last) await this.save(roles, pos);
  }

  async save(roles: Roles, pos: StepPosition): Promise<string> {
    const dir = join(this.dir, `step-${pos.step}`);
    makeDirs(dir);
    await saveOn(roles, this.role, join(dir, 'model'), true);
    // Written last: a folder without it is incomplete and is never resumed from.
    writeJsonAtomic(join(dir, STEP_STATE_FILE), pos);
    this.last = pos.step;
    this.log(`checkpoint ${dir}`);
    pruneCheckpoints(this.dir, STEP_STATE_FILE, this.keep);
    return dir;
  }
}

/**
 * Where a step driver starts: after the checkpoint's step, with its models
 * and data position restored and the held-out figures it recorded, or at step
 * 0 with `evaluate()`'s (the driver's evaluation before training).
 */
export async function startPosition<E>(roles: Roles, ck: StepResume, it: BatchIterator, name: string, log: (line: string) => void,
  evaluate: () => Promise<E>): Promise<{ step: number; evalBefore: E }> {
  if (!ck.from) return { step: 0, evalBefore: await evaluate() };
  await ck.checkpoints!.restore(roles, ck.from, it);
  log(`${name}: resumed from ${ck.from.dir} after step ${ck.from.state.step}`);
  return { step: ck.from.state.step, evalBefore: ck.from.state.evalBefore as E };
}

/**
 * Replica 0 of `role` saves into `dir`. A failure names the role and the
 * folder (the role's own message names the file and errno); the error object
 * is kept, so what the runtime knows of it (code, retriable) stays.
 */
export async function saveOn(roles: Roles, role: string, dir: string, optimizer: boolean): Promise<void> {
  try {
    await roles.role(role, 0).call('save', { meta: { dir, optimizer } });
  } catch (err) {
    if (err instanceof Error) {
      // The role's stack lines say nothing to a user; its message says what failed.
      const text = err.message.split('\n').filter((l) => !/^\s+at /.test(l)).join('\n');
      err.message = `${role}/0 could not save ${dir}: ${text}`;
    }
    throw err;
  }
}

function readPosition(file: string): StepPosition {
  let s: StepPosition;
  try {
    s = JSON.parse(readFileSync(file, 'utf8')) as StepPosition;
  } catch (e) {
    throw new Error(`checkpoint ${file}: cannot be read (${(e as Error).message})`);
  }
  const b = s?.batches;
  if (!Number.isInteger(s?.step) || s.step < 0 || !b || !Number.isInteger(b.epoch) || !Number.isInteger(b.batch))
    throw new Error(`checkpoint ${file}: not a step position (needs step and batches {epoch, batch})`);
  return s;
}
