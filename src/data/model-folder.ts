// The check of a model folder that the pipeline makes before any role
// process starts: its config.json names a supported family. Here, beside the
// data layer's other reads of model folders (the tokenizer), so that the
// coordinator knows roles by their methods and never loads model code.
import { readConfig } from '../models/config.js';

/** Throws (with the config's own message) unless `dir` holds a config.json of a supported family. */
export function checkModelFolder(dir: string): void {
  readConfig(dir);
}
