// Checkpoint folders in Hugging Face's layout: config.json, model.safetensors
// (or shards + index), tokenizer files, and for critic and reward models the
// value head `v_head.weight` beside the base tensors. Reading maps each family's
// tensors onto the stack's parameters (families/*.ts); writing maps them back,
// so a folder Quartet writes loads in transformers unchanged.
import { copyFileSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirs, onDisk } from '../util/disk.js';
import { type ModelConfig, readConfig } from './config.js';
import { mergedParams } from './lora.js';
import { Transformer } from './transformer.js';
import { type FamilyLayout, type Params, fromHf, toHf } from './families/layout.js';
import { layout as gpt2Layout } from './families/gpt2.js';
import { layout as optLayout } from './families/opt.js';
import { layout as neoxLayout } from './families/gpt_neox.js';
import { layout as llamaLayout } from './families/llama.js';
import { CheckpointTensors, INDEX_FILE, SINGLE_FILE, type NamedArray, type SaveDtype, writeCheckpointTensors } from './safetensors.js';
import { allFiniteBuffer } from '../tensor/buffers.js';

export const VALUE_HEAD = 'v_head.weight';
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];

export function layoutOf(cfg: ModelConfig): FamilyLayout {
  switch (cfg.family) {
    case 'gpt2': return gpt2Layout(cfg);
    case 'opt': return optLayout(cfg);
    case 'gpt_neox': return neoxLayout(cfg);
    case 'llama': return llamaLayout(cfg);
  }
}

export interface Weights {
  params: Params;
  /** v_head.weight [1, embedDim] when the checkpoint has one. */
  valueHead: Float32Array | null;
}

export interface ReadOptions {
  /**
   * Load tensors that hold NaN or infinite values. Off by default: such
   * weights train to a NaN loss that looks like a run (config key
   * checks.allowNonFiniteWeights).
   */
  allowNonFinite?: boolean;
}

/**
 * Refuses a tensor with a NaN or infinite value, naming the file, the tensor
 * and the first bad value. The test is one native pass (allFinite); the slow
 * search for what to report runs only on failure.
 */
export function checkFinite(data: Float32Array, name: string, file: string): void {
  if (allFiniteBuffer(data)) return;
  let count = 0, first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      count++;
      if (first < 0) first = i;
    }
  }
  throw new Error(`checkpoint: tensor '${name}' in ${file} holds ${count} non-finite value(s) of ${data.length} (the first, at index ${first}, is ${data[first]}); `
    + 'refusing to load it (set checks.allowNonFiniteWeights to load it anyway)');
}

/** Reads a folder's tensors into the stack's parameters, checking every name and shape against the config (and, unless allowed, that every value is finite). */
export function readWeights(dir: string, cfg: ModelConfig, opts: ReadOptions = {}): Weights {
  const lay = layoutOf(cfg);
  const tensors = new CheckpointTensors(dir);
  try {
    const used = new Set<string>();
    const resolve = (name: string): string => {
      if (tensors.has(name)) return name;
      // A checkpoint of the base model alone (GPT2Model, OPTModel, ...) has no base prefix.
      if (name.startsWith(lay.basePrefix) && tensors.has(name.slice(lay.basePrefix.length))) return name.slice(lay.basePrefix.length);
      throw new Error(`checkpoint: tensor '${name}' (needed by the ${cfg.modelType} config) is missing from ${dir}`);
    };
    const read = (name: string, shape: number[]): Float32Array => {
      const actual = resolve(name);
      used.add(actual);
      return finite(actual, tensors.readF32(actual, shape));
    };
    const finite = (name: string, data: Float32Array): Float32Array => {
      if (!opts.allowNonFinite) checkFinite(data, name, tensors.entry(name).file);
      return data;
    };
    const params: Params = new Map();
    for (const spec of lay.params) params.set(spec.name, { shape: spec.shape, data: fromHf(spec, read) });
    let valueHead: Float32Array | null = null;
    if (tensors.has(VALUE_HEAD)) {
      valueHead = finite(VALUE_HEAD, tensors.readF32(VALUE_HEAD, [1, cfg.embedDim]));
      used.add(VALUE_HEAD);
    }
    // A tied checkpoint may still carry the head tensor: transformers ties it to the embedding and ignores it.
    const tiedHead = cfg.tieWordEmbeddings ? [/^lm_head\.weight$/, /^embed_out\.weight$/] : [];
    const unexpected = tensors.names().filter((n) => !used.has(n) && ![...lay.ignore, ...tiedHead].some((re) => re.test(n)));
    if (unexpected.length) {
      throw new Error(`checkpoint: ${dir} has ${unexpected.length} tensor(s) the ${cfg.modelType} config does not use: ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', ...' : ''}`);
    }
    return { params, valueHead };
  } finally {
    tensors.close();
  }
}

/** The stack's parameters as Hugging Face tensors, in the family's order. */
export function hfTensors(cfg: ModelConfig, params: Params): NamedArray[] {
  const out: NamedArray[] = [];
  for (const spec of layoutOf(cfg).params) {
    const p = params.get(spec.name);
    if (!p) throw new Error(`checkpoint: parameter '${spec.name}' is missing from the model being saved`);
    out.push(...toHf(spec, p.data));
  }
  return out;
}

export interface WriteOptions {
  dtype?: SaveDtype;
  /** Shard above this many bytes (default 5 GiB, as save_pretrained). */
  maxShardBytes?: number;
  valueHead?: Float32Array | null;
  /** Copy tokenizer files from this folder. */
  tokenizerFrom?: string | null;
}

/** Writes config.json, the weights (replacing any earlier weight files) and, when asked, the tokenizer files. */
export function writeCheckpoint(dir: string, cfg: ModelConfig, params: Params, opts: WriteOptions = {}): void {
  // Node's recursive mkdir would call a read-only disk ENOENT: makeDirs keeps the real errno.
  makeDirs(dir);
  for (const f of onDisk('list', dir, () => readdirSync(dir))) {
    if (f === SINGLE_FILE || f === INDEX_FILE || /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)) onDisk('remove', join(dir, f), () => rmSync(join(dir, f)));
  }
  const tensors = hfTensors(cfg, params);
  if (opts.valueHead) tensors.push({ name: VALUE_HEAD, shape: [1, cfg.embedDim], data: opts.valueHead });
  writeCheckpointTensors(dir, tensors, { dtype: opts.dtype, maxShardBytes: opts.maxShardBytes });
  const raw: Record<string, unknown> = { ...cfg.raw, dtype: dtypeName(opts.dtype ?? 'F32') };
  if (raw.torch_dtype !== undefined) raw.torch_dtype = raw.dtype;
  onDisk('write', join(dir, 'config.json'), () => writeFileSync(join(dir, 'config.json'), JSON.stringify(raw, null, 2) + '\n'));
  if (opts.tokenizerFrom && opts.tokenizerFrom !== dir) {
    for (const f of TOKENIZER_FILES) {
      if (existsSync(join(opts.tokenizerFrom, f))) onDisk('copy the tokenizer file to', join(dir, f), () => copyFileSync(join(opts.tokenizerFrom!, f), join(dir, f)));
    }
  }
}

function dtypeName(d: SaveDtype): string {
  return d === 'F32' ? 'float32' : d === 'F16' ? 'float16' : 'bfloat16';
}

/** Loads a checkpoint folder (config.json + weights, with its value head when saved) as a decoder stack. */
export function loadModel(dir: string, opts: { seed?: number } & ReadOptions = {}): Transformer {
  const cfg = readConfig(dir);
  const w = readWeights(dir, cfg, opts);
  return new Transformer(cfg, w.params, { valueHead: w.valueHead, seed: opts.seed });
}

/** Saves a model as a Hugging Face folder: LoRA adapters merged in, value head beside the base tensors. */
export function saveModel(model: Transformer, dir: string, opts: Omit<WriteOptions, 'valueHead'> = {}): void {
  writeCheckpoint(dir, model.cfg, mergedParams(model), { ...opts, valueHead: model.valueHead?.f32 ?? null });
}
