// The reference role (docs/roles.md): the frozen SFT policy, log-probs only.
import { serveRole } from '../src/runtime/role-server.js';
import { takeSeqs } from '../src/training/batch.js';
import { PolicyEngine } from '../src/training/policy.js';
import { f32Out, roleSetup } from './engine-role.js';

await serveRole((ctx) => {
  const engine = PolicyEngine.load(roleSetup(ctx));
  return {
    methods: {
      logprobs: (req) => {
        const s = takeSeqs('logprobs', req.tensors, 'ids', 'mask', 2);
        return { tensors: { logprobs: f32Out(engine.logprobs(s), [s.B, s.T - 1]) } };
      },
    },
  };
});
