// From the validated config to the runtime's placement plan: which role
// groups a step needs, on which devices, how many replicas, how they restart,
// and the arguments each role process starts with. Configuration flows one
// way: file -> Config -> this plan (src/runtime/placement.ts checks and
// resolves it) -> role start-up arguments.
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

/** What a role process needs to know about training, by role. */
function roleArgs(config: Config, role: RoleName, step: StepName): Record<string, unknown> {
  const common = { role, step, seed: config.seed, model: roleModel(config, role), ...(config.checks.allowNonFiniteWeights ? { allowNonFiniteWeights: true } : {}) };
  switch (role) {
    case 'actor': {
      const { devices, replicas, threads, node, maxRestarts, model, ...ppoTraining } = config.actor;
      const own = step === 'sft' ? config.sft : step === 'dpo' ? config.dpo : null;
      const training = own
        ? { ...ppoTraining, lr: own.lr, weightDecay: own.weightDecay, schedule: own.schedule, warmup: own.warmup, dropout: own.dropout }
        : ppoTraining;
      const generation = {
        maxNewTokens: config.ppo.maxNewTokens, temperature: config.ppo.temperature,
        topK: config.ppo.topK, topP: config.ppo.topP,
      };
      return { ...common, training, generation, ptxCoef: config.ppo.ptxCoef, ema: config.ppo.ema ? config.ppo.emaBeta : 0,
        clipRange: config.ppo.clipRange, beta: config.dpo.beta, labelSmoothing: config.dpo.labelSmoothing };
    }
    case 'critic': {
      const { devices, replicas, threads, node, maxRestarts, model, ...training } = config.critic;
      return { ...common, training, clipRangeValue: config.ppo.clipRangeValue };
    }
    case 'reference':
      return common;
    case 'reward': {
      const { devices, replicas, threads, node, maxRestarts, model, kind, command, ...training } = config.reward;
      return { ...common, kind, training };
    }
  }
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
    const args = roleArgs(config, role, step);
    if (r.threads > 0) args.threads = r.threads;
    const p: RoleInput = {
      replicas: r.replicas,
      devices: [...r.devices],
      restart: { maxRestarts: r.maxRestarts },
      args,
    };
    // 'gpu-1', or 'local,gpu-1' with one name per replica (a group across machines).
    if (r.node !== null) p.node = r.node.includes(',') ? r.node.split(',').map((n) => n.trim()) : r.node;
    if (role === 'reward' && config.reward.kind === 'command') p.command = [...config.reward.command!];
    else p.module = `actors/${role}.js`;
    plan[role] = p;
  }
  return plan;
}
