// What the four model roles share: kernel threads from the placement, the
// engine options from the start-up args, gradient averaging across the
// group's replicas, tensors out in wire form, and the save/load methods of
// docs/roles.md.
import { native } from '../src/native.js';
import { type Collective, openCollective, parseCollectiveSpec } from '../src/runtime/collective.js';
import type { Method, RoleContext } from '../src/runtime/role-server.js';
import type { WireTensor } from '../src/runtime/wire.js';
import { type EngineOptions, engineOptions } from '../src/training/options.js';
import { metaBool, metaString } from '../src/training/settings.js';
import type { Trainer } from '../src/training/trainer.js';

/** Sets this process's kernel threads (args.threads when the plan gives fewer than the cores) and reads the engine options. */
export function roleSetup(ctx: RoleContext): EngineOptions {
  const t = ctx.args.threads;
  native.setThreads(typeof t === 'number' && Number.isInteger(t) && t > 0 ? t : Math.max(1, ctx.threads));
  return engineOptions(ctx.role, ctx.args);
}

export function f32Out(data: Float32Array, shape: number[]): WireTensor<'f32'> {
  return { dtype: 'f32', shape, data };
}

export function i32Out(data: Int32Array, shape: number[]): WireTensor<'i32'> {
  return { dtype: 'i32', shape, data };
}

/** `save` and `load` of a trainable engine: meta.dir, meta.optimizer (default false). */
export function checkpointMethods(engine: { save(dir: string, opt: boolean): void; load(dir: string, opt: boolean): void }): Record<string, Method> {
  return {
    save: (req) => {
      engine.save(metaString('save', req.meta, 'dir'), metaBool('save', req.meta, 'optimizer', false));
    },
    load: (req) => {
      engine.load(metaString('load', req.meta, 'dir'), metaBool('load', req.meta, 'optimizer', false));
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
