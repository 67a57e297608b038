// What the model roles share: gradient averaging across the group's
// replicas, tensors out in wire form, and the save/load methods of
// docs/roles.md.
import { readMeta } from '../src/roles/methods.js';
import { type Collective, openCollective, parseCollectiveSpec } from '../src/runtime/collective.js';
import type { Method, RoleContext } from '../src/runtime/role-server.js';
import type { WireTensor } from '../src/runtime/wire.js';
import type { Trainer } from '../src/training/trainer.js';

export function f32Out(data: Float32Array, shape: number[]): WireTensor<'f32'> {
  return { dtype: 'f32', shape, data };
}

export function i32Out(data: Int32Array, shape: number[]): WireTensor<'i32'> {
  return { dtype: 'i32', shape, data };
}

/** `save` and `load` of a trainable engine: meta.dir and meta.optimizer. */
export function checkpointMethods(role: 'actor' | 'critic' | 'reward', engine: { save(dir: string, opt: boolean): void; load(dir: string, opt: boolean): void }): Record<string, Method> {
  return {
    save: (req) => {
      const m = readMeta(role, 'save', req.meta);
      engine.save(m.dir, m.optimizer);
    },
    load: (req) => {
      const m = readMeta(role, 'load', req.meta);
      engine.load(m.dir, m.optimizer);
    },
  };
}

/**
 * Joins the group's collective (args.collective, set by the runtime for a
 * group of several replicas) and has the trainer average its gradients
 * through it before each step; null for a lone replica. Close it on shutdown.
 */
export async function averageGradients(ctx: RoleContext, trainer: Trainer): Promise<Collective | null> {
  const spec = parseCollectiveSpec(ctx.role, ctx.args.collective);
  if (!spec || spec.size === 1) return null;
  const c = await openCollective(spec, ctx.replica);
  trainer.allReduce = (grads) => c.allReduceMean(grads);
  return c;
}
