// The reward role (docs/roles.md): scores in step 3, pairwise training in step 2.
import { checkRows, readMeta } from '../src/roles/methods.js';
import { serveRole } from '../src/runtime/role-server.js';
import { RewardEngine } from '../src/training/reward.js';
import { averageGradients, checkpointMethods, f32Out } from './engine-role.js';
import { pairs, takeSeqs } from './requests.js';
import { roleSetup } from './startup.js';

await serveRole(async (ctx) => {
  const engine = RewardEngine.load(roleSetup(ctx));
  const collective = await averageGradients(ctx, engine.trainer);
  return {
    methods: {
      score: (req) => {
        // The texts (meta prompts, answers, eos) are for text scorers; a reward model reads the ids.
        const meta = readMeta('reward', 'score', req.meta);
        const { promptLength } = meta;
        const s = takeSeqs('score', req.tensors);
        checkRows('reward', 'score', meta, s.B);
        if (promptLength > s.T) throw new Error(`reward.score: meta.promptLength ${promptLength} is beyond the ${s.T} columns of 'ids'`);
        return { tensors: { scores: f32Out(engine.score(s, promptLength), [s.B]) } };
      },
      train_rm: async (req) => {
        const st = readMeta('reward', 'train_rm', req.meta);
        const [c, r] = pairs('train_rm', req);
        const x = await engine.trainRm(c, r, st);
        return { metrics: { loss: x.loss, acc: x.acc, chosen_mean: x.chosenMean, rejected_mean: x.rejectedMean, grad_norm: x.gradNorm, skipped: x.skipped ? 1 : 0 } };
      },
      eval_rm: (req) => {
        readMeta('reward', 'eval_rm', req.meta);
        const [c, r] = pairs('eval_rm', req);
        const x = engine.evalRm(c, r);
        return {
          tensors: { chosen_scores: f32Out(x.chosenScores, [c.B]), rejected_scores: f32Out(x.rejectedScores, [c.B]) },
          metrics: { loss: x.loss, acc: x.acc, chosen_mean: x.chosenMean, rejected_mean: x.rejectedMean },
        };
      },
      ...checkpointMethods('reward', engine),
    },
    onShutdown: () => collective?.close(),
  };
});
