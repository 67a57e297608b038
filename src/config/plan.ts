// From the validated config to the runtime's placement plan: which role
// groups a step needs, on which devices, how many replicas, how they restart,
// and the arguments each role process starts with. Configuration flows one
// way: file -> Config -> this plan (src/runtime/placement.ts checks and
// resolves it) -> role start-up arguments (what builds the model); the
// per-call knobs go the other way, in request meta (src/roles/methods.ts).
import { resolve } from 'node:path';
import type { ActorArgs, CommandRewardArgs, EngineArgs, HttpRewardArgs, TrainingArgs } from '../roles/args.js';
import type { PlanInput, RoleInput } from '../runtime/placement.js';
import { roleNames, type Config, type RoleName, type StepName } from './defaults.js';

/** The role groups each step runs (ARCHITECTURE.md §3): SFT in the actor
 *  group, RM training in the reward group, PPO across all four (GRPO and RLOO
 *  need no critic); DPO in the actor group against the reference. */
export function rolesForStep(config: Config, step: StepName): RoleName[] {
  switch (step) {
    case 'sft': return ['actor'];
    case 'rm': return ['reward'];
    case 'ppo': return config.ppo.algorithm === 'ppo' ? [...roleNames] : ['actor', 'reference', 'reward'];
    case 'dpo': return ['actor', 'reference'];
  }
}

/** The model folder a role loads: the reference starts as the actor does, and
 *  the critic as the reward model does (DeepSpeed-Chat's step 3). */
export function roleModel(config: Config, role: RoleName): string | null {
  switch (role) {
    case 'actor': return config.actor.model;
    case 'critic': return config.critic.model ?? config.reward.model;
    case 'reference': return config.reference.model ?? config.actor.model;
    case 'reward': return config.reward.model;
  }
}

/** The engine-building settings of a trainable role in `step`: the optimizer keys stay out (they travel per call). */
function trainingArgs(config: Config, role: 'actor' | 'critic' | 'reward', step: StepName): TrainingArgs {
  const r = config[role];
  // SFT and DPO train the actor with their own lr and dropout; gradient checkpointing and LoRA are the actor's.
  const own = role === 'actor' && step === 'sft' ? config.sft : role === 'actor' && step === 'dpo' ? config.dpo : null;
  return { lr: own ? own.lr : r.lr, dropout: own ? own.dropout : r.dropout, gradientCheckpointing: r.gradientCheckpointing, lora: { ...r.lora, moduleNames: [...r.lora.moduleNames] } };
}

/**
 * A role process's start-up args (src/roles/args.ts): only what builds its
 * engine. Every per-call knob (lr, clip ranges, sampling, DPO beta...) travels
 * in the request meta that the drivers of src/coordinator send.
 */
function roleArgs(config: Config, role: RoleName, step: StepName): EngineArgs | ActorArgs | CommandRewardArgs | HttpRewardArgs {
  const model = roleModel(config, role);
  const base = { model: model!, seed: config.seed, ...(config.checks.allowNonFiniteWeights ? { allowNonFiniteWeights: true } : {}) };
  switch (role) {
    case 'actor':
      return { ...base, training: trainingArgs(config, role, step), ema: config.ppo.ema ? config.ppo.emaBeta : 0 } satisfies ActorArgs;
    case 'critic':
      return { ...base, training: trainingArgs(config, role, step) } satisfies EngineArgs;
    case 'reference':
      return base satisfies EngineArgs;
    case 'reward':
      return rewardArgs(config, step);
  }
}

/** Step 2 trains a reward model whatever scores PPO: a custom scorer is only step 3's. */
function rewardKind(config: Config, step: StepName): Config['reward']['kind'] {
  return step === 'rm' ? 'model' : config.reward.kind;
}

/** The reward role's args: a model to load, a custom process's tokenizer and run directory, or the HTTP scorer's settings. */
function rewardArgs(config: Config, step: StepName): EngineArgs | CommandRewardArgs | HttpRewardArgs {
  const r = config.reward;
  const kind = rewardKind(config, step);
  // The tokenizer that made the ids is the actor's (which the reference shares).
  if (kind === 'command') return { tokenizer: config.actor.model === null ? null : resolve(config.actor.model), runDir: resolve(config.outputDir) } satisfies CommandRewardArgs;
  if (kind === 'http') return { url: r.url!, retries: r.retries, ...r.http } satisfies HttpRewardArgs;
  return { model: r.model!, seed: config.seed, ...(config.checks.allowNonFiniteWeights ? { allowNonFiniteWeights: true } : {}), training: trainingArgs(config, 'reward', step) } satisfies EngineArgs;
}

/**
 * The placement of every role group `step` needs. A role's `threads` (when
 * not 0) travels in its args: the placement derives threads from the cores of
 * a device entry, and a role may use fewer.
 */
export function placementPlan(config: Config, step: StepName): PlanInput {
  const plan: PlanInput = {};
  for (const role of rolesForStep(config, step)) {
    const r = config[role];
    const args: Record<string, unknown> = { ...roleArgs(config, role, step) };
    if (r.threads > 0) args.threads = r.threads;
    const p: RoleInput = {
      replicas: r.replicas,
      devices: [...r.devices],
      restart: { maxRestarts: r.maxRestarts },
      args,
    };
    // 'gpu-1', or 'local,gpu-1' with one name per replica (a group across machines).
    if (r.node !== null) p.node = r.node.includes(',') ? r.node.split(',').map((n) => n.trim()) : r.node;
    const kind = rewardKind(config, step);
    if (role === 'reward' && kind === 'command') {
      p.command = [...config.reward.command!];
      // A custom process starts in the run directory: its relative paths land there, not wherever quartet was started.
      p.cwd = resolve(config.outputDir);
    } else p.module = role === 'reward' && kind === 'http' ? 'actors/reward-http.js' : `actors/${role}.js`;
    plan[role] = p;
  }
  return plan;
}
