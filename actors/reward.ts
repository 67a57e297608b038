// The reward role (docs/roles.md): scores in step 3, pairwise training in step 2.
import { serveRole, type Request } from '../src/runtime/role-server.js';
import { type Seqs, takeSeqs } from '../src/training/batch.js';
import { RewardEngine } from '../src/training/reward.js';
import { metaNumber, stepSettings } from '../src/training/settings.js';
import { averageGradients, checkpointMethods, f32Out, roleSetup } from './engine-role.js';

function pairsOf(op: string, req: Request): [Seqs, Seqs] {
  return [takeSeqs(op, req.tensors, 'chosen_ids', 'chosen_mask'), takeSeqs(op, req.tensors, 'rejected_ids', 'rejected_mask')];
}

await serveRole(async (ctx) => {
  const engine = RewardEngine.load(roleSetup(ctx));
  const collective = await averageGradients(ctx, engine.trainer);
  return {
    methods: {
      score: (req) => {
        const s = takeSeqs('score', req.tensors);
        const scores = engine.score(s, metaNumber('score', req.meta, 'promptLength', 0, 0));
        return { tensors: { scores: f32Out(scores, [s.B]) } };
      },
      train_rm: async (req) => {
        const [c, r] = pairsOf('train_rm', req);
        const x = await engine.trainRm(c, r, stepSettings('train_rm', req.meta));
        return { metrics: { loss: x.loss, acc: x.acc, chosen_mean: x.chosenMean, rejected_mean: x.rejectedMean, grad_norm: x.gradNorm, skipped: x.skipped ? 1 : 0 } };
      },
      eval_rm: (req) => {
        const [c, r] = pairsOf('eval_rm', req);
        const x = engine.evalRm(c, r, metaNumber('eval_rm', req.meta, 'microBatch', 0, 0));
        return {
          tensors: { chosen_scores: f32Out(x.chosenScores, [c.B]), rejected_scores: f32Out(x.rejectedScores, [c.B]) },
          metrics: { loss: x.loss, acc: x.acc, chosen_mean: x.chosenMean, rejected_mean: x.rejectedMean },
        };
      },
      ...checkpointMethods(engine),
    },
    onShutdown: () => collective?.close(),
  };
});
