// The scalar value head of critic and reward models (DeepSpeed-Chat's
// RewardModel: v_head = nn.Linear(hidden, 1, bias=False) over the last hidden
// states; for OPT models with project_out, over word_embed_proj_dim). It is
// saved as `v_head.weight` [1, embedDim] beside the base model's tensors.
import { Rng, param, rand } from '../tensor/index.js';
import type { Transformer } from './transformer.js';

/** Gives a model a fresh value head, initialised as nn.Linear (uniform in +-1/sqrt(fan_in)). */
export function addValueHead(model: Transformer, seed = 0): void {
  if (model.valueHead) throw new Error('value head: the model already has one');
  const E = model.cfg.embedDim;
  const bound = 1 / Math.sqrt(E);
  model.valueHead = param(rand([1, E], new Rng(seed), -bound, bound));
}

