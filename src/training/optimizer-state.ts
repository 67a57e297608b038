// The trainer's state beside a checkpoint folder, so that --resume continues
// exactly: AdamW's moments in optimizer.safetensors (`state.<i>.m`,
// `state.<i>.v`, parameters in optimizer order) and its groups and step counts
// in optimizer.json, with the parameter names to check the layout on load.
// `extra` tensors ride in the same file: the LoRA adapters and the unmerged
// base weights they sit on (the Hugging Face folder holds merged weights only).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors, type NamedArray } from '../models/safetensors.js';
import { onDisk } from '../util/disk.js';
import type { AdamWStateDict, RngState } from '../tensor/index.js';

export const OPTIMIZER_TENSORS = 'optimizer.safetensors';
export const OPTIMIZER_JSON = 'optimizer.json';
const FORMAT = 'quartet-adamw-1';

interface OptimizerJson {
  format: string;
  groups: AdamWStateDict['groups'];
  /** Per parameter in optimizer order: its name and shape, and its step count (null: never stepped). */
  params: { name: string; shape: number[]; step: number | null }[];
  extra: string[];
  /** The model's dropout generator, so that a resumed run draws the same masks (absent in older files). */
  rng?: RngState;
}

export interface SavedParam {
  name: string;
  shape: readonly number[];
}

export function saveOptimizerState(dir: string, sd: AdamWStateDict, params: readonly SavedParam[], extra: readonly NamedArray[] = [], rng?: RngState): void {
  if (sd.state.length !== params.length) throw new Error(`optimizer state: ${sd.state.length} states for ${params.length} parameter names`);
  const tensors: NamedArray[] = [];
  sd.state.forEach((s, i) => {
    if (s === null) return;
    tensors.push({ name: `state.${i}.m`, shape: [s.m.length], data: s.m }, { name: `state.${i}.v`, shape: [s.v.length], data: s.v });
  });
  tensors.push(...extra);
  writeSafetensors(join(dir, OPTIMIZER_TENSORS), tensors, { metadata: { format: FORMAT } });
  const json: OptimizerJson = {
    format: FORMAT,
    groups: sd.groups,
    params: params.map((p, i) => ({ name: p.name, shape: [...p.shape], step: sd.state[i]?.step ?? null })),
    extra: extra.map((e) => e.name),
    ...(rng && { rng }),
  };
  onDisk('write', join(dir, OPTIMIZER_JSON), () => writeFileSync(join(dir, OPTIMIZER_JSON), JSON.stringify(json, null, 1) + '\n'));
}

/**
 * Reads the state saved by saveOptimizerState, checking it against the
 * parameters the optimizer holds now (names and shapes, in order).
 */
export function loadOptimizerState(dir: string, params: readonly SavedParam[]): { sd: AdamWStateDict; extra: Map<string, Float32Array>; rng: RngState | null } {
  const jsonPath = join(dir, OPTIMIZER_JSON);
  if (!existsSync(jsonPath)) throw new Error(`optimizer state: ${jsonPath} is missing (was the checkpoint saved with optimizer: true?)`);
  let json: OptimizerJson;
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8')) as OptimizerJson;
  } catch (e) {
    throw new Error(`optimizer state: ${jsonPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (json.format !== FORMAT) throw new Error(`optimizer state: ${jsonPath} has format ${JSON.stringify(json.format)}, expected '${FORMAT}'`);
  if (!Array.isArray(json.params) || json.params.length !== params.length) {
    throw new Error(`optimizer state: ${jsonPath} holds ${json.params?.length} parameters, the model being trained has ${params.length}`);
  }
  json.params.forEach((p, i) => {
    const want = params[i];
    if (p.name !== want.name || p.shape.join(',') !== want.shape.join(',')) {
      throw new Error(`optimizer state: ${jsonPath} parameter ${i} is '${p.name}' [${p.shape}], the model has '${want.name}' [${want.shape}]`);
    }
  });
  const file = SafetensorsFile.open(join(dir, OPTIMIZER_TENSORS));
  try {
    const state = json.params.map((p, i) => (p.step === null ? null : { step: p.step, m: file.readF32(`state.${i}.m`), v: file.readF32(`state.${i}.v`) }));
    const extra = new Map<string, Float32Array>();
    for (const name of json.extra ?? []) extra.set(name, file.readF32(name));
    return { sd: { groups: json.groups, state }, extra, rng: json.rng ?? null };
  } finally {
    file.close();
  }
}
