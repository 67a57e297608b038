// The check of a model folder that the pipeline makes before any role
// process starts: its config.json names a supported family, and how many
// positions the model has. Here, beside the data layer's other reads of model
// folders (the tokenizer), so that the coordinator knows roles by their
// methods and never loads model code.
import { readConfig } from '../models/config.js';

export interface ModelFacts {
  modelType: string;
  /** Positions the model was built for: prompt + answer tokens must fit in them. */
  maxPositions: number;
}

/** Throws (with the config's own message) unless `dir` holds a config.json of a supported family. */
export function checkModelFolder(dir: string): ModelFacts {
  const cfg = readConfig(dir);
  return { modelType: cfg.modelType, maxPositions: cfg.maxPositions };
}
