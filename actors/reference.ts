// The reference role (docs/roles.md): the frozen SFT policy, log-probs only.
import { readMeta } from '../src/roles/methods.js';
import { serveRole } from '../src/runtime/role-server.js';
import { PolicyEngine } from '../src/training/policy.js';
import { f32Out } from './engine-role.js';
import { takeTokens } from './requests.js';
import { roleSetup } from './startup.js';

await serveRole((ctx) => {
  const engine = PolicyEngine.load(roleSetup(ctx));
  return {
    methods: {
      logprobs: (req) => {
        readMeta('reference', 'logprobs', req.meta);
        const s = takeTokens('logprobs', req);
        return { tensors: { logprobs: f32Out(engine.logprobs(s), [s.B, s.T - 1]) } };
      },
    },
  };
});
