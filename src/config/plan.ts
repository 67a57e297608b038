// From the validated config to the runtime's placement plan: which role
// groups a step needs, on which devices, how many replicas, how they restart,
// and the arguments each role process starts with. Configuration flows one
// way: file -> Config -> this plan -> role start-up arguments.
//
// The plan's input shape belongs to src/runtime/placement.ts; until that file
// lands, RolePlacementInput below mirrors the agreed shape.
import { roleNames, type Config, type RoleName, type StepName } from './defaults.js';

export interface RolePlacementInput {
  replicas: number;
  devices: string[];
  /** The node agent to run on; absent = the coordinator's machine. */
  node?: string;
  /** A custom process (any language) instead of a module of the project. */
  command?: string[];
  /** Compiled role server under dist/, e.g. 'actors/actor.js'. */
  module?: string;
  /** The role's own start-up arguments (reach the role as RoleStartup.args). */
  args?: Record<string, unknown>;
  restart?: { policy: 'never' | 'on-failure'; maxRestarts: number };
  /** Kernel threads per replica; 0 = one per CPU core of its devices. */
  threads?: number;
}

export type PlacementInput = Partial<Record<RoleName, RolePlacementInput>>;

/** The role groups each step runs (ARCHITECTURE.md §3): SFT in the actor
 *  group, RM training in the reward group, PPO across all four (GRPO and RLOO
 *  need no critic). */
export function rolesForStep(config: Config, step: StepName): RoleName[] {
  switch (step) {
    case 'sft': return ['actor'];
    case 'rm': return ['reward'];
    case 'ppo': return config.ppo.algorithm === 'ppo' ? [...roleNames] : ['actor', 'reference', 'reward'];
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
  const common = { role, step, seed: config.seed, model: roleModel(config, role) };
  switch (role) {
    case 'actor': {
      const { devices, replicas, threads, node, restart, maxRestarts, model, ...ppoTraining } = config.actor;
      const { lr, weightDecay, schedule, warmup, dropout } = config.sft;
      const training = step === 'sft' ? { ...ppoTraining, lr, weightDecay, schedule, warmup, dropout } : ppoTraining;
      const generation = {
        maxNewTokens: config.ppo.maxNewTokens, temperature: config.ppo.temperature,
        topK: config.ppo.topK, topP: config.ppo.topP,
      };
      return { ...common, training, generation, ptxCoef: config.ppo.ptxCoef, ema: config.ppo.ema ? config.ppo.emaBeta : 0,
        clipRange: config.ppo.clipRange };
    }
    case 'critic': {
      const { devices, replicas, threads, node, restart, maxRestarts, model, ...training } = config.critic;
      return { ...common, training, clipRangeValue: config.ppo.clipRangeValue };
    }
    case 'reference':
      return common;
    case 'reward': {
      const { devices, replicas, threads, node, restart, maxRestarts, model, kind, command, ...training } = config.reward;
      return { ...common, kind, training };
    }
  }
}

/** The placement of every role group `step` needs. */
export function placementPlan(config: Config, step: StepName): PlacementInput {
  const plan: PlacementInput = {};
  for (const role of rolesForStep(config, step)) {
    const r = config[role];
    const p: RolePlacementInput = {
      replicas: r.replicas,
      devices: [...r.devices],
      threads: r.threads,
      restart: { policy: r.restart, maxRestarts: r.maxRestarts },
      args: roleArgs(config, role, step),
    };
    if (r.node !== null) p.node = r.node;
    if (role === 'reward' && config.reward.kind === 'command') p.command = [...config.reward.command!];
    else p.module = `actors/${role}.js`;
    plan[role] = p;
  }
  return plan;
}
