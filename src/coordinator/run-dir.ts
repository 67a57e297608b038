// The layout of a run directory (ARCHITECTURE.md §7), in one place:
//
//   <run>/config.json              the resolved configuration
//   <run>/metrics.jsonl            one line per logged step of every phase
//   <run>/state.json               which steps are done, the latest PPO checkpoint (for --resume)
//   <run>/logs/                    the coordinator's and every role process's log
//   <run>/sft/                     step 1's actor (Hugging Face folder)
//   <run>/rm/                      step 2's reward model
//   <run>/ppo/actor, ppo/critic    step 3's final models
//   <run>/actor, critic, reward    the run's final models, whichever step made them (files linked, not copied)
//   <run>/ppo/checkpoints/step-N/  actor/ and critic/ with optimizer state, and state.json
//   <run>/checkpoints/<step>/step-N/  inside sft, rm and dpo: model/ with optimizer state, and state.json
//   <run>/data-cache/              tokenised data (the data layer's default)
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { diskError, makeDirs, onDisk } from '../util/disk.js';

export interface RunPaths {
  root: string;
  config: string;
  metrics: string;
  state: string;
  logs: string;
  sft: string;
  rm: string;
  ppoActor: string;
  ppoCritic: string;
  checkpoints: string;
  /** The run's final models: the newest actor (ppo, else dpo, else sft), critic (ppo) and reward model (rm). */
  actor: string;
  critic: string;
  reward: string;
}

export function runPaths(root: string): RunPaths {
  const r = resolve(root);
  return {
    root: r,
    config: join(r, 'config.json'),
    metrics: join(r, 'metrics.jsonl'),
    state: join(r, 'state.json'),
    logs: join(r, 'logs'),
    sft: join(r, 'sft'),
    rm: join(r, 'rm'),
    ppoActor: join(r, 'ppo', 'actor'),
    ppoCritic: join(r, 'ppo', 'critic'),
    checkpoints: join(r, 'ppo', 'checkpoints'),
    actor: join(r, 'actor'),
    critic: join(r, 'critic'),
    reward: join(r, 'reward'),
  };
}

/** Where the one-model steps (sft, rm, dpo) keep their checkpoints. */
export function stepCheckpointsDir(paths: RunPaths, step: 'sft' | 'rm' | 'dpo'): string {
  return join(paths.root, 'checkpoints', step);
}

/**
 * The newest `step-N` folder under `dir` that is complete (holds
 * `stateFile`, which is written last), or null: a checkpoint cut short by a
 * kill is skipped.
 */
export function newestCompleteStep(dir: string, stateFile: string): string | null {
  const steps = completeSteps(dir, stateFile);
  return steps.length ? join(dir, `step-${steps[0]}`) : null;
}

/** The step numbers of the complete `step-N` folders under `dir`, newest first. */
function completeSteps(dir: string, stateFile: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => /^step-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && existsSync(join(dir, m[0], stateFile)))
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
}

/**
 * Removes all but the `keep` newest complete checkpoints under `dir` (0: keeps
 * all), after a new one is complete; returns the folders removed.
 */
export function pruneCheckpoints(dir: string, stateFile: string, keep: number): string[] {
  if (keep <= 0) return [];
  const old = completeSteps(dir, stateFile).slice(keep).map((n) => join(dir, `step-${n}`));
  for (const d of old) onDisk('remove the old checkpoint', d, () => rmSync(d, { recursive: true, force: true }));
  return old;
}

/** Writes JSON so that a reader never sees half a file (a kill mid-write leaves the old one). */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw diskError(err, 'write', path);
  }
}

/** Tokenizer files a model folder may carry; a saved step output gets them from its source. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];

/**
 * Copies the tokenizer files of `from` that `to` lacks, so that every output
 * folder is usable by `quartet chat` and transformers whether or not the role
 * that saved it copied them.
 */
export function copyTokenizerFiles(from: string, to: string): void {
  makeDirs(to);
  for (const f of TOKENIZER_FILES) {
    if (existsSync(join(from, f)) && !existsSync(join(to, f))) onDisk('copy the tokenizer file to', join(to, f), () => copyFileSync(join(from, f), join(to, f)));
  }
}

/**
 * Makes `to` (one of the run's final model folders) hold what the step output
 * `from` holds: its files hard-linked (copied where a link cannot be made),
 * so a run has one place for each final model without a second copy on disk.
 * Whatever `to` held before is replaced; `from` is left as it is.
 */
export function publishModel(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const [src, dst] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isDirectory()) publishModel(src, dst);
    else {
      try {
        linkSync(src, dst);
      } catch {
        copyFileSync(src, dst);
      }
    }
  }
}
