// The check of a whole run before anything trains: every step's model
// folders exist and load their config, each step gets from the steps before
// it what it needs (the SFT output for PPO, a reward model, ...), the data
// is there, and prompt + answer lengths fit the positions of every model
// that sees them. Lengths the user did not set shrink to fit, with a note;
// lengths the user set and that do not fit are errors naming the key, the
// model and its positions. Runs in milliseconds, before any process starts,
// so a mistake never costs a finished SFT.
import { existsSync } from 'node:fs';
import type { Config, StepName } from '../config/defaults.js';
import { checkModelFolder, type ModelFacts } from '../data/model-folder.js';

/** A model folder as the check sees it: which key named it, and its facts. */
interface Slot {
  label: string;
  facts: ModelFacts;
}

export interface PreflightResult {
  /** The config with defaults fitted to the models (the input is not changed). */
  config: Config;
  /** One line per fitted key, for the user. */
  notes: string[];
}

export class PreflightError extends Error {
  constructor(readonly problems: string[]) {
    super(`the run cannot start:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'PreflightError';
  }
}

/** Steps done in this run directory by an earlier command, and their output folders. */
export interface DoneSteps {
  done: StepName[];
  outputs: Partial<Record<StepName, string>>;
}

const FLAG: Record<string, string> = { 'actor.model': '--actor-model', 'reward.model': '--reward-model', 'critic.model': '--critic.model', 'reference.model': '--reference.model' };

/**
 * Checks the run `config` would make (its steps in order, after the steps of
 * `before` that it does not repeat) and fits the lengths the user did not set
 * (`explicit`: the keys a file or the command line set; undefined: all keys
 * count as set). Throws a PreflightError listing every problem.
 */
export function preflight(config: Config, before: DoneSteps, explicit?: ReadonlySet<string>): PreflightResult {
  const cfg: Config = structuredClone(config);
  const problems: string[] = [];
  const seen = new Map<string, Slot | null>();
  const folder = (key: string, dir: string, step: StepName): Slot | null => {
    if (seen.has(dir)) return seen.get(dir)!;
    let slot: Slot | null = null;
    if (!existsSync(dir)) problems.push(`${step}: ${key} = '${dir}' does not exist`);
    else {
      try {
        slot = { label: `${key} '${dir}'`, facts: checkModelFolder(dir) };
      } catch (err) {
        problems.push(`${step}: ${key} = '${dir}': ${(err as Error).message}`);
      }
    }
    seen.set(dir, slot);
    return slot;
  };
  // The actor and the reward model as the next step will find them: a folder given, or an earlier step's output.
  let actor: Slot | null | undefined;
  let reward: Slot | null | undefined;
  const produced = (step: StepName, out: string, key: string) => folder(`${key} (the ${step} output)`, out, step);
  for (const step of before.done) {
    const out = before.outputs[step];
    if (!out || config.steps.includes(step)) continue;
    if (step === 'sft' && cfg.actor.model === null) actor = produced(step, out, 'actor.model');
    if (step === 'rm' && cfg.reward.model === null) reward = produced(step, out, 'reward.model');
  }
  const need = (current: Slot | null | undefined, key: 'actor.model' | 'reward.model', step: StepName, hint: string): Slot | null => {
    if (current !== undefined) return current;
    const dir = key === 'actor.model' ? cfg.actor.model : cfg.reward.model;
    if (dir === null) {
      problems.push(`${step}: ${key} is not set; ${hint}`);
      return null;
    }
    return folder(key, dir, step);
  };
  const optional = (key: 'critic.model' | 'reference.model', dir: string | null, step: StepName, otherwise: Slot | null): Slot | null =>
    dir === null ? otherwise : folder(key, dir, step);
  /** Models that see data.maxPromptLen + data.maxAnswerLen tokens (sft, rm, dpo, ptx), and those that see a prompt + generated answer (ppo). */
  const sequences: Slot[] = [];
  const generations: Slot[] = [];
  const keep = (list: Slot[], ...slots: (Slot | null)[]) => list.push(...slots.filter((s): s is Slot => s !== null));

  for (const step of config.steps) {
    const out = before.done.includes(step) ? before.outputs[step] : undefined;
    if (out) {
      // Done in an earlier run (--resume): its output feeds the steps after it.
      if (step === 'sft') actor = produced(step, out, 'actor.model');
      if (step === 'rm') reward = produced(step, out, 'reward.model');
      continue;
    }
    if (config.data.paths.length === 0) problems.push(`${step}: data.paths is not set; give --data FILE|DIR`);
    if (step === 'sft') {
      actor = need(actor, 'actor.model', step, `give the model to fine-tune (${FLAG['actor.model']} DIR)`);
      keep(sequences, actor);
    } else if (step === 'rm') {
      reward = need(reward, 'reward.model', step, `give the model to train as the reward model (${FLAG['reward.model']} DIR)`);
      keep(sequences, reward);
    } else if (step === 'dpo') {
      actor = need(actor, 'actor.model', step, `give the SFT model (${FLAG['actor.model']} DIR) or run sft before it (--steps sft,dpo)`);
      keep(sequences, actor, optional('reference.model', cfg.reference.model, step, actor));
    } else {
      actor = need(actor, 'actor.model', step, `give the SFT model (${FLAG['actor.model']} DIR) or run sft before it (--steps sft,rm,ppo)`);
      const ref = optional('reference.model', cfg.reference.model, step, actor);
      keep(generations, actor, ref);
      if (cfg.ppo.ptxCoef > 0) keep(sequences, actor);
      if (cfg.reward.kind === 'model') {
        reward = need(reward, 'reward.model', step, `give a trained reward model (${FLAG['reward.model']} DIR) or run rm before it (--steps sft,rm,ppo)`);
        keep(generations, reward);
      }
      if (cfg.ppo.algorithm === 'ppo') {
        if (cfg.critic.model === null && cfg.reward.kind === 'command')
          problems.push(`${step}: critic.model is not set, and reward.kind 'command' gives no reward model to start the critic from; give --critic.model=DIR`);
        else keep(generations, optional('critic.model', cfg.critic.model, step, reward ?? null));
      }
    }
  }
  for (const p of config.data.paths) if (!existsSync(p)) problems.push(`data.paths: '${p}' does not exist`);

  const notes: string[] = [];
  const set = (key: string) => explicit === undefined || explicit.has(key);
  fit(cfg, 'data.maxAnswerLen', 1, sequences, set, problems, notes);
  fit(cfg, 'ppo.maxNewTokens', 2, generations, set, problems, notes);
  if (problems.length) throw new PreflightError([...new Set(problems)]);
  return { config: cfg, notes };
}

/** Reads or writes a length key of the config ('data.maxAnswerLen'). */
function length(cfg: Config, key: string, value?: number): number {
  const [section, name] = key.split('.') as ['data' | 'ppo', string];
  const sec = cfg[section] as unknown as Record<string, number>;
  if (value !== undefined) sec[name] = value;
  return sec[name];
}

/**
 * Makes data.maxPromptLen + `answerKey` fit the fewest positions among
 * `models`: keys the user did not set shrink (the prompt to at most half
 * the positions when neither is set), keys the user set that do not fit are problems.
 */
function fit(cfg: Config, answerKey: string, answerMin: number, models: Slot[], set: (key: string) => boolean, problems: string[], notes: string[]): void {
  if (models.length === 0) return;
  const m = models.reduce((a, b) => (b.facts.maxPositions < a.facts.maxPositions ? b : a));
  const P = m.facts.maxPositions;
  const promptKey = 'data.maxPromptLen';
  const prompt = length(cfg, promptKey), answer = length(cfg, answerKey);
  if (prompt + answer <= P) return;
  const model = `the ${P} positions of ${m.label} (${m.facts.modelType})`;
  const setPrompt = set(promptKey), setAnswer = set(answerKey);
  let p = prompt, a = answer;
  if (setPrompt && setAnswer) {
    problems.push(`${promptKey} = ${prompt} + ${answerKey} = ${answer} = ${prompt + answer} tokens exceed ${model}; lower ${answerKey} or ${promptKey}`);
    return;
  } else if (!setPrompt && !setAnswer) {
    // The prompt keeps at most half the positions, the answer gets the rest (up to its default).
    p = Math.min(prompt, Math.max(1, Math.floor(P / 2)));
    a = Math.min(answer, P - p);
  } else if (!setAnswer) {
    a = P - prompt;
  } else {
    p = P - answer;
  }
  if (p < 1 || a < answerMin) {
    const culprit = setPrompt ? promptKey : answerKey;
    problems.push(`${culprit} = ${length(cfg, culprit)} leaves no room in ${model} for ${culprit === promptKey ? answerKey : promptKey} (at least ${culprit === promptKey ? answerMin : 1}); lower ${culprit}`);
    return;
  }
  const changed = [p !== prompt ? `${promptKey} ${prompt} -> ${p}` : '', a !== answer ? `${answerKey} ${answer} -> ${a}` : ''].filter(Boolean);
  length(cfg, promptKey, p);
  length(cfg, answerKey, a);
  notes.push(`note: ${changed.join(', ')} (defaults) to fit ${model}; set them to choose`);
}
