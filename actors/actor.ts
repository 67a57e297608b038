// The actor role (docs/roles.md): the policy's hybrid engine, generation and
// training (SFT, PPO, DPO) on the same weights.
import { serveRole } from '../src/runtime/role-server.js';
import { type TensorLike, take, takeSeqs } from '../src/training/batch.js';
import { type DpoBatch, type DpoResult, PolicyEngine } from '../src/training/policy.js';
import { metaBool, metaNumber, metaString, stepSettings } from '../src/training/settings.js';
import { averageGradients, checkpointMethods, f32Out, i32Out, roleSetup } from './engine-role.js';

await serveRole(async (ctx) => {
  const options = roleSetup(ctx);
  // args.ema: the moving average's beta (0: none), from ppo.ema / ppo.emaBeta.
  const engine = PolicyEngine.load(options, typeof ctx.args.ema === 'number' ? ctx.args.ema : 0);
  const collective = await averageGradients(ctx, engine.trainer);
  const gen = (ctx.args.generation ?? {}) as Record<string, unknown>;
  const clipDefault = typeof ctx.args.clipRange === 'number' ? ctx.args.clipRange : 0.2;
  const ptxDefault = typeof ctx.args.ptxCoef === 'number' ? ctx.args.ptxCoef : 0;
  const betaDefault = typeof ctx.args.beta === 'number' ? ctx.args.beta : 0.1;
  const smoothingDefault = typeof ctx.args.labelSmoothing === 'number' ? ctx.args.labelSmoothing : 0;
  const dpoSettings = (op: string, meta: Record<string, unknown>) => ({
    beta: metaNumber(op, meta, 'beta', betaDefault, Number.MIN_VALUE),
    labelSmoothing: metaNumber(op, meta, 'labelSmoothing', smoothingDefault, 0),
  });
  // Without meta.seed, each call samples with the next seed after the run's.
  let calls = 0;
  return {
    methods: {
      generate: (req) => {
        const op = 'generate';
        const prompts = takeSeqs(op, req.tensors, 'prompt_ids', 'prompt_mask');
        const started = performance.now();
        const g = engine.generate(prompts, {
          maxNewTokens: metaNumber(op, req.meta, 'maxNewTokens', gen.maxNewTokens as number | undefined, 1),
          temperature: metaNumber(op, req.meta, 'temperature', (gen.temperature as number | undefined) ?? 1, 0),
          topK: metaNumber(op, req.meta, 'topK', (gen.topK as number | undefined) ?? 0, 0),
          topP: metaNumber(op, req.meta, 'topP', (gen.topP as number | undefined) ?? 1, 0),
          seed: metaNumber(op, req.meta, 'seed', options.seed + ++calls),
        });
        let tokens = 0;
        for (let b = 0; b < prompts.B; b++) for (let t = prompts.T; t < g.T; t++) tokens += g.mask[b * g.T + t];
        return {
          tensors: { ids: i32Out(g.ids, [prompts.B, g.T]), mask: i32Out(g.mask, [prompts.B, g.T]) },
          metrics: { gen_time: (performance.now() - started) / 1000, gen_tokens: tokens },
        };
      },
      logprobs: (req) => {
        const s = takeSeqs('logprobs', req.tensors, 'ids', 'mask', 2);
        return { tensors: { logprobs: f32Out(engine.logprobs(s), [s.B, s.T - 1]) } };
      },
      train_sft: async (req) => {
        const s = takeSeqs('train_sft', req.tensors, 'ids', 'mask', 2);
        const lossMask = take('train_sft', req.tensors, 'loss_mask', 'f32', [s.B, s.T]) as Float32Array;
        const r = await engine.trainSft(s, lossMask, stepSettings('train_sft', req.meta));
        return { metrics: { loss: r.loss, grad_norm: r.gradNorm, tokens: r.tokens, skipped: r.skipped ? 1 : 0 } };
      },
      eval_sft: (req) => {
        const s = takeSeqs('eval_sft', req.tensors, 'ids', 'mask', 2);
        const lossMask = take('eval_sft', req.tensors, 'loss_mask', 'f32', [s.B, s.T]) as Float32Array;
        const r = engine.evalSft(s, lossMask);
        return { metrics: { loss: r.loss, tokens: r.tokens } };
      },
      train_ppo: async (req) => {
        const op = 'train_ppo';
        const s = takeSeqs(op, req.tensors, 'ids', 'mask', 2);
        const at = (name: string) => take(op, req.tensors, name, 'f32', [s.B, s.T - 1]) as Float32Array;
        const ptx = req.tensors.ptx_ids ? takeSeqs(op, req.tensors, 'ptx_ids', 'ptx_mask', 2) : null;
        const r = await engine.trainPpo(
          { ...s, oldLogprobs: at('old_logprobs'), advantages: at('advantages'), actionMask: at('action_mask') },
          { ...stepSettings(op, req.meta), clipRange: metaNumber(op, req.meta, 'clipRange', clipDefault, 0), ptxCoef: metaNumber(op, req.meta, 'ptxCoef', ptxDefault, 0) },
          ptx,
        );
        return {
          metrics: { policy_loss: r.policyLoss, clip_frac: r.clipFrac, approx_kl: r.approxKl, ptx_loss: r.ptxLoss, grad_norm: r.gradNorm, skipped: r.skipped ? 1 : 0 },
        };
      },
      train_dpo: async (req) => {
        const op = 'train_dpo';
        const r = await engine.trainDpo(dpoBatch(op, req.tensors), { ...stepSettings(op, req.meta), ...dpoSettings(op, req.meta) });
        return { metrics: { ...dpoMetrics(r), grad_norm: r.gradNorm, skipped: r.skipped ? 1 : 0 } };
      },
      eval_dpo: (req) => {
        const op = 'eval_dpo';
        const { beta, labelSmoothing } = dpoSettings(op, req.meta);
        return { metrics: dpoMetrics(engine.evalDpo(dpoBatch(op, req.tensors), beta, labelSmoothing)) };
      },
      ...checkpointMethods(engine),
      // meta.ema: write the moving average of the weights instead of the weights.
      save: (req) => {
        engine.save(metaString('save', req.meta, 'dir'), metaBool('save', req.meta, 'optimizer', false), metaBool('save', req.meta, 'ema', false));
      },
    },
    stats: () => ({ parameters: engine.model.parameters().reduce((n, p) => n + p.size, 0) }),
    onShutdown: () => collective?.close(),
  };
});

/** The pair tensors of train_dpo / eval_dpo (docs/roles.md). */
function dpoBatch(op: string, tensors: Record<string, TensorLike>): DpoBatch {
  const chosen = takeSeqs(op, tensors, 'chosen_ids', 'chosen_mask', 2);
  const rejected = takeSeqs(op, tensors, 'rejected_ids', 'rejected_mask', 2);
  const { B, T } = chosen;
  const f = (name: string, shape: number[]) => take(op, tensors, name, 'f32', shape) as Float32Array;
  return {
    chosen, rejected,
    chosenAnswer: f('chosen_answer_mask', [B, T - 1]), rejectedAnswer: f('rejected_answer_mask', [B, T - 1]),
    refChosen: f('ref_chosen_logps', [B]), refRejected: f('ref_rejected_logps', [B]),
  };
}

function dpoMetrics(r: DpoResult): Record<string, number> {
  return { loss: r.loss, acc: r.acc, chosen_reward: r.chosenReward, rejected_reward: r.rejectedReward, margin: r.margin, pairs: r.pairs };
}
