// GPT-NeoX (GPTNeoXForCausalLM): rotary on the first rotary_pct of each head,
// parallel or sequential residual, a fused query_key_value stored per head as
// [NH, 3, HS] rows (reordered to [q | k | v] at load), head `embed_out`.
import type { ModelConfig } from '../config.js';
import { type FamilyLayout, type ParamSpec, fusedLinear, norm, plain } from './layout.js';

export function layout(cfg: ModelConfig): FamilyLayout {
  const { hidden: C, intermediate: I, vocabSize: V, heads: NH } = cfg;
  const params: ParamSpec[] = [plain('wte', 'gpt_neox.embed_in.weight', [V, C])];
  for (let i = 0; i < cfg.layers; i++) {
    const h = `gpt_neox.layers.${i}`;
    const qkv = `${h}.attention.query_key_value`;
    params.push(...norm(cfg, `h.${i}.ln1`, `${h}.input_layernorm`));
    params.push({ name: `h.${i}.qkv.w`, shape: [3 * C, C], parts: [{ name: `${qkv}.weight`, shape: [3 * C, C] }], headInterleaved: NH, modules: [qkv] });
    if (cfg.qkvBias) params.push({ name: `h.${i}.qkv.b`, shape: [3 * C], parts: [{ name: `${qkv}.bias`, shape: [3 * C] }], headInterleaved: NH, modules: [qkv] });
    params.push(
      ...fusedLinear(`h.${i}.o`, [`${h}.attention.dense`], [C], C, cfg.outBias),
      ...norm(cfg, `h.${i}.ln2`, `${h}.post_attention_layernorm`),
      ...fusedLinear(`h.${i}.up`, [`${h}.mlp.dense_h_to_4h`], [I], C, cfg.mlpBias),
      ...fusedLinear(`h.${i}.down`, [`${h}.mlp.dense_4h_to_h`], [C], I, cfg.mlpBias),
    );
  }
  params.push(...norm(cfg, 'ln_f', 'gpt_neox.final_layer_norm'));
  if (!cfg.tieWordEmbeddings) params.push(plain('lm_head', 'embed_out.weight', [V, C]));
  return { basePrefix: 'gpt_neox.', params, ignore: [/\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/, /^gpt_neox\.rotary_emb\.inv_freq$/] };
}
