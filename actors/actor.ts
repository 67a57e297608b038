// The actor role (docs/roles.md): the policy's hybrid engine, generation and
// training (SFT, PPO, DPO) on the same weights. Every knob of a call comes in
// its meta (src/roles/methods.ts); the start-up args only build the engine.
import { readMeta } from '../src/roles/methods.js';
import { serveRole } from '../src/runtime/role-server.js';
import { type DpoResult, PolicyEngine } from '../src/training/policy.js';
import { averageGradients, checkpointMethods, f32Out, i32Out } from './engine-role.js';
import { dpoBatch, ppoBatch, ptxBatch, sftBatch, takeSeqs, takeTokens } from './requests.js';
import { emaBeta, roleSetup } from './startup.js';

await serveRole(async (ctx) => {
  const engine = PolicyEngine.load(roleSetup(ctx), emaBeta(ctx.args));
  const collective = await averageGradients(ctx, engine.trainer);
  return {
    methods: {
      generate: (req) => {
        const g = readMeta('actor', 'generate', req.meta);
        const prompts = takeSeqs('generate', req.tensors, 'prompt_ids', 'prompt_mask');
        // The answer mask is the coordinator's to derive (its end-of-answer and pad ids), so only ids go back.
        const r = engine.generate(prompts, g);
        return { tensors: { ids: i32Out(r.ids, [prompts.B, r.T]) } };
      },
      logprobs: (req) => {
        readMeta('actor', 'logprobs', req.meta);
        const s = takeTokens('logprobs', req);
        return { tensors: { logprobs: f32Out(engine.logprobs(s), [s.B, s.T - 1]) } };
      },
      train_sft: async (req) => {
        const st = readMeta('actor', 'train_sft', req.meta);
        const { seqs, lossMask } = sftBatch('train_sft', req);
        const r = await engine.trainSft(seqs, lossMask, st);
        return { metrics: { loss: r.loss, grad_norm: r.gradNorm, tokens: r.tokens, skipped: r.skipped ? 1 : 0 } };
      },
      eval_sft: (req) => {
        readMeta('actor', 'eval_sft', req.meta);
        const { seqs, lossMask } = sftBatch('eval_sft', req);
        const r = engine.evalSft(seqs, lossMask);
        return { metrics: { loss: r.loss, tokens: r.tokens } };
      },
      train_ppo: async (req) => {
        const st = readMeta('actor', 'train_ppo', req.meta);
        const r = await engine.trainPpo(ppoBatch('train_ppo', req), st, ptxBatch('train_ppo', req));
        return {
          metrics: { policy_loss: r.policyLoss, clip_frac: r.clipFrac, approx_kl: r.approxKl, ptx_loss: r.ptxLoss, grad_norm: r.gradNorm, skipped: r.skipped ? 1 : 0 },
        };
      },
      train_dpo: async (req) => {
        const st = readMeta('actor', 'train_dpo', req.meta);
        const r = await engine.trainDpo(dpoBatch('train_dpo', req), st);
        return { metrics: { ...dpoMetrics(r), grad_norm: r.gradNorm, skipped: r.skipped ? 1 : 0 } };
      },
      eval_dpo: (req) => {
        const { beta, labelSmoothing } = readMeta('actor', 'eval_dpo', req.meta);
        return { metrics: dpoMetrics(engine.evalDpo(dpoBatch('eval_dpo', req), beta, labelSmoothing)) };
      },
      ...checkpointMethods('actor', engine),
      save_ema: (req) => {
        engine.saveEma(readMeta('actor', 'save_ema', req.meta).dir);
      },
    },
    stats: () => ({ parameters: engine.model.parameters().reduce((n, p) => n + p.size, 0) }),
    onShutdown: () => collective?.close(),
  };
});

function dpoMetrics(r: DpoResult): Record<string, number> {
  return { loss: r.loss, acc: r.acc, chosen_reward: r.chosenReward, rejected_reward: r.rejectedReward, margin: r.margin, pairs: r.pairs };
}
