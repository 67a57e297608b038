// How a family's Hugging Face tensors map onto the decoder stack's parameters.
// The stack uses one internal naming for every family (below) and the torch
// nn.Linear layout [out, in]; each family lists, per internal parameter, the
// Hugging Face tensors it is made of:
//   - concatenated along rows in the listed order (q, k, v -> one fused qkv;
//     gate, up -> one fused gate_up), so each block runs one product;
//   - `conv1d`: GPT-2 stores Conv1D weights [in, out], transposed at load;
//   - `headInterleaved`: GPT-NeoX stores its fused qkv per head as [NH, 3, HS]
//     rows; the stack wants [3, NH, HS] ([q | k | v]).
// Saving runs the same steps backwards, so a round trip is exact.
//
// Internal names (C hidden, E embedDim, I intermediate, P positions):
//   wte [V, E]  wpe [P, C]  proj_in [C, E]  proj_out [E, C]  lm_head [V, E]
//   h.{i}.ln1.w/.b  h.{i}.qkv.w [(NH + 2 NKV) HS, C] /.b  h.{i}.o.w [C, NH HS] /.b
//   h.{i}.ln2.w/.b  h.{i}.up.w [I or 2I, C] /.b  h.{i}.down.w [C, I] /.b  ln_f.w/.b
import { permuteBuffer } from '../../tensor/index.js';
import type { ModelConfig } from '../config.js';
import type { NamedArray } from '../safetensors.js';

export interface HfPart {
  name: string;
  /** Shape as stored in the checkpoint. */
  shape: number[];
  conv1d?: boolean;
}

export interface ParamSpec {
  name: string;
  shape: number[];
  parts: HfPart[];
  /** GPT-NeoX per-head interleaved fused qkv: the number of heads. */
  headInterleaved?: number;
  /** The Hugging Face module path(s) this parameter belongs to, e.g. 'model.layers.0.self_attn.q_proj' (LoRA matching). */
  modules: string[];
}

export interface FamilyLayout {
  /** transformers' base_model_prefix plus '.' ('transformer.', 'model.', 'gpt_neox.'): a checkpoint saved
   *  from the base model alone (GPT2Model, OPTModel, ...) has names without it, which load too. */
  basePrefix: string;
  params: ParamSpec[];
  /** Buffers some checkpoints carry that the stack recomputes (causal masks, rotary inv_freq). */
  ignore: RegExp[];
}

/** A named parameter of the stack. */
export type Params = Map<string, { shape: number[]; data: Float32Array }>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  permuteBuffer(out, data, [rows, cols], [1, 0]);
  return out;
}

/** Builds one internal parameter from its Hugging Face parts (read by `read(name, shape)`). */
export function fromHf(spec: ParamSpec, read: (name: string, shape: number[]) => Float32Array): Float32Array {
  const out = new Float32Array(numel(spec.shape));
  let at = 0;
  for (const p of spec.parts) {
    let d = read(p.name, p.shape);
    if (p.conv1d) d = transpose(d, p.shape[0], p.shape[1]);
    out.set(d, at);
    at += d.length;
  }
  if (at !== out.length) throw new Error(`layout: parts of '${spec.name}' hold ${at} values, its shape [${spec.shape}] needs ${out.length}`);
  if (spec.headInterleaved) {
    const nh = spec.headInterleaved;
    const rest = out.length / (3 * nh);
    const fused = new Float32Array(out.length);
    permuteBuffer(fused, out, [nh, 3, rest], [1, 0, 2]);
    return fused;
  }
  return out;
}

/** Splits one internal parameter back into its Hugging Face tensors. */
export function toHf(spec: ParamSpec, data: Float32Array): NamedArray[] {
  let src = data;
  if (spec.headInterleaved) {
    const nh = spec.headInterleaved;
    const rest = data.length / (3 * nh);
    src = new Float32Array(data.length);
    permuteBuffer(src, data, [3, nh, rest], [1, 0, 2]);
  }
  const out: NamedArray[] = [];
  let at = 0;
  for (const p of spec.parts) {
    const n = numel(p.shape);
    let d = src.subarray(at, at + n);
    at += n;
    // Conv1D [in, out] from the stack's [out, in].
    if (p.conv1d) d = transpose(d, p.shape[1], p.shape[0]);
    out.push({ name: p.name, shape: p.shape, data: d });
  }
  return out;
}

/** A parameter made of exactly one Hugging Face tensor of the same layout. */
export function plain(name: string, hf: string, shape: number[], module = hf.replace(/\.(weight|bias)$/, '')): ParamSpec {
  return { name, shape, parts: [{ name: hf, shape }], modules: [module] };
}

/** Weight and (when `bias`) bias of a linear layer [out, in] made of several row blocks. */
export function fusedLinear(name: string, hfModules: string[], outs: number[], inp: number, bias: boolean): ParamSpec[] {
  const total = outs.reduce((a, b) => a + b, 0);
  const specs: ParamSpec[] = [{
    name: `${name}.w`, shape: [total, inp], modules: hfModules,
    parts: hfModules.map((m, i) => ({ name: `${m}.weight`, shape: [outs[i], inp] })),
  }];
  if (bias) {
    specs.push({
      name: `${name}.b`, shape: [total], modules: hfModules,
      parts: hfModules.map((m, i) => ({ name: `${m}.bias`, shape: [outs[i]] })),
    });
  }
  return specs;
}

/** Norm weight (and bias for LayerNorm). */
export function norm(cfg: ModelConfig, name: string, hfModule: string, width = cfg.hidden): ParamSpec[] {
  const specs = [plain(`${name}.w`, `${hfModule}.weight`, [width])];
  if (cfg.norm === 'layernorm') specs.push(plain(`${name}.b`, `${hfModule}.bias`, [width]));
  return specs;
}
