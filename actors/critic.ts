// The critic role (docs/roles.md): per-token values and the clipped value update.
import { readMeta } from '../src/roles/methods.js';
import { serveRole } from '../src/runtime/role-server.js';
import { ValueEngine } from '../src/training/value.js';
import { averageGradients, checkpointMethods, f32Out } from './engine-role.js';
import { takeTokens, valueBatch } from './requests.js';
import { roleSetup } from './startup.js';

await serveRole(async (ctx) => {
  const engine = ValueEngine.load(roleSetup(ctx));
  const collective = await averageGradients(ctx, engine.trainer);
  return {
    methods: {
      values: (req) => {
        readMeta('critic', 'values', req.meta);
        const s = takeTokens('values', req);
        return { tensors: { values: f32Out(engine.values(s), [s.B, s.T - 1]) } };
      },
      train_value: async (req) => {
        const st = readMeta('critic', 'train_value', req.meta);
        const r = await engine.trainValue(valueBatch('train_value', req), st);
        return { metrics: { value_loss: r.valueLoss, vf_clip_frac: r.clipFrac, grad_norm: r.gradNorm, skipped: r.skipped ? 1 : 0 } };
      },
      ...checkpointMethods('critic', engine),
    },
    onShutdown: () => collective?.close(),
  };
});
