// OPT (OPTForCausalLM): learned positions looked up at position + 2, separate
// q/k/v projections (fused here), pre-LN or the post-LN blocks of OPT-350m, and
// project_in/project_out when word_embed_proj_dim differs from hidden_size.
import type { ModelConfig } from '../config.js';
import { type FamilyLayout, type ParamSpec, fusedLinear, norm, plain } from './layout.js';

export function layout(cfg: ModelConfig): FamilyLayout {
  const { hidden: C, intermediate: I, vocabSize: V, maxPositions: P, embedDim: E } = cfg;
  const d = 'model.decoder';
  const bias = cfg.qkvBias;
  const params: ParamSpec[] = [
    plain('wte', `${d}.embed_tokens.weight`, [V, E]),
    plain('wpe', `${d}.embed_positions.weight`, [P + cfg.positionOffset, C]),
  ];
  if (E !== C) params.push(plain('proj_in', `${d}.project_in.weight`, [C, E]), plain('proj_out', `${d}.project_out.weight`, [E, C]));
  for (let i = 0; i < cfg.layers; i++) {
    const h = `${d}.layers.${i}`;
    params.push(
      ...norm(cfg, `h.${i}.ln1`, `${h}.self_attn_layer_norm`),
      ...fusedLinear(`h.${i}.qkv`, [`${h}.self_attn.q_proj`, `${h}.self_attn.k_proj`, `${h}.self_attn.v_proj`], [C, C, C], C, bias),
      ...fusedLinear(`h.${i}.o`, [`${h}.self_attn.out_proj`], [C], C, cfg.outBias),
      ...norm(cfg, `h.${i}.ln2`, `${h}.final_layer_norm`),
      ...fusedLinear(`h.${i}.up`, [`${h}.fc1`], [I], C, cfg.mlpBias),
      ...fusedLinear(`h.${i}.down`, [`${h}.fc2`], [C], I, cfg.mlpBias),
    );
  }
  if (cfg.finalNorm) params.push(...norm(cfg, 'ln_f', `${d}.final_layer_norm`));
  if (!cfg.tieWordEmbeddings) params.push(plain('lm_head', 'lm_head.weight', [V, E]));
  return { basePrefix: 'model.', params, ignore: [] };
}
