// LLaMA and its relatives Mistral and Qwen2 (LlamaForCausalLM, ...): RMSNorm,
// rotary, SwiGLU (gate and up fused into one [2I, C] product), grouped-query
// attention (q, k, v fused into one [(NH + 2 NKV) HS, C] product).
import type { ModelConfig } from '../config.js';
import { type FamilyLayout, type ParamSpec, fusedLinear, norm, plain } from './layout.js';

export function layout(cfg: ModelConfig): FamilyLayout {
  const { hidden: C, intermediate: I, vocabSize: V, heads: NH, kvHeads: NKV, headDim: HS } = cfg;
  const params: ParamSpec[] = [plain('wte', 'model.embed_tokens.weight', [V, C])];
  for (let i = 0; i < cfg.layers; i++) {
    const h = `model.layers.${i}`;
    const a = `${h}.self_attn`;
    params.push(
      ...norm(cfg, `h.${i}.ln1`, `${h}.input_layernorm`),
      ...fusedLinear(`h.${i}.qkv`, [`${a}.q_proj`, `${a}.k_proj`, `${a}.v_proj`], [NH * HS, NKV * HS, NKV * HS], C, cfg.qkvBias),
      ...fusedLinear(`h.${i}.o`, [`${a}.o_proj`], [C], NH * HS, cfg.outBias),
      ...norm(cfg, `h.${i}.ln2`, `${h}.post_attention_layernorm`),
      ...fusedLinear(`h.${i}.up`, [`${h}.mlp.gate_proj`, `${h}.mlp.up_proj`], [I, I], C, cfg.mlpBias),
      ...fusedLinear(`h.${i}.down`, [`${h}.mlp.down_proj`], [C], I, cfg.mlpBias),
    );
  }
  params.push(...norm(cfg, 'ln_f', 'model.norm'));
  if (!cfg.tieWordEmbeddings) params.push(plain('lm_head', 'lm_head.weight', [V, C]));
  return { basePrefix: 'model.', params, ignore: [/\.rotary_emb\.inv_freq$/] };
}
