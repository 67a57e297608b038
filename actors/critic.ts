// The critic role (docs/roles.md): per-token values and the clipped value update.
import { serveRole } from '../src/runtime/role-server.js';
import { take, takeSeqs } from '../src/training/batch.js';
import { metaNumber, stepSettings } from '../src/training/settings.js';
import { ValueEngine } from '../src/training/value.js';
import { averageGradients, checkpointMethods, f32Out, roleSetup } from './engine-role.js';

await serveRole(async (ctx) => {
  const engine = ValueEngine.load(roleSetup(ctx));
  const collective = await averageGradients(ctx, engine.trainer);
  const clipDefault = typeof ctx.args.clipRangeValue === 'number' ? ctx.args.clipRangeValue : 0.2;
  return {
    methods: {
      values: (req) => {
        const s = takeSeqs('values', req.tensors, 'ids', 'mask', 2);
        return { tensors: { values: f32Out(engine.values(s), [s.B, s.T - 1]) } };
      },
      train_value: async (req) => {
        const op = 'train_value';
        const s = takeSeqs(op, req.tensors, 'ids', 'mask', 2);
        const at = (name: string) => take(op, req.tensors, name, 'f32', [s.B, s.T - 1]) as Float32Array;
        const r = await engine.trainValue(
          { ...s, oldValues: at('old_values'), returns: at('returns'), actionMask: at('action_mask') },
          { ...stepSettings(op, req.meta), clipRangeValue: metaNumber(op, req.meta, 'clipRangeValue', clipDefault, 0) },
        );
        return { metrics: { value_loss: r.valueLoss, vf_clip_frac: r.clipFrac, grad_norm: r.gradNorm, skipped: r.skipped ? 1 : 0 } };
      },
      ...checkpointMethods(engine),
    },
    onShutdown: () => collective?.close(),
  };
});
