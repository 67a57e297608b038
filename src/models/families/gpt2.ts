// GPT-2 (GPT2LMHeadModel): learned positions, pre-LN, Conv1D weights stored
// [in, out], c_attn = [q | k | v] along its output columns.
import type { ModelConfig } from '../config.js';
import { type FamilyLayout, type ParamSpec, norm, plain } from './layout.js';

export function layout(cfg: ModelConfig): FamilyLayout {
  const { hidden: C, intermediate: I, vocabSize: V, maxPositions: P } = cfg;
  const conv = (name: string, hf: string, inp: number, out: number): ParamSpec[] => [
    { name: `${name}.w`, shape: [out, inp], parts: [{ name: `${hf}.weight`, shape: [inp, out], conv1d: true }], modules: [hf] },
    plain(`${name}.b`, `${hf}.bias`, [out]),
  ];
  const params: ParamSpec[] = [
    plain('wte', 'transformer.wte.weight', [V, C]),
    plain('wpe', 'transformer.wpe.weight', [P, C]),
  ];
  for (let i = 0; i < cfg.layers; i++) {
    const h = `transformer.h.${i}`;
    params.push(
      ...norm(cfg, `h.${i}.ln1`, `${h}.ln_1`),
      ...conv(`h.${i}.qkv`, `${h}.attn.c_attn`, C, 3 * C),
      ...conv(`h.${i}.o`, `${h}.attn.c_proj`, C, C),
      ...norm(cfg, `h.${i}.ln2`, `${h}.ln_2`),
      ...conv(`h.${i}.up`, `${h}.mlp.c_fc`, C, I),
      ...conv(`h.${i}.down`, `${h}.mlp.c_proj`, I, C),
    );
  }
  params.push(...norm(cfg, 'ln_f', 'transformer.ln_f'));
  if (!cfg.tieWordEmbeddings) params.push(plain('lm_head', 'lm_head.weight', [V, C]));
  return { basePrefix: 'transformer.', params, ignore: [/\.attn\.(bias|masked_bias)$/] };
}
