// The prompt format a model was trained with. A model folder inside a run
// directory (<run>/sft, <run>/rm, <run>/ppo/actor,
// <run>/ppo/checkpoints/step-N/actor) finds the run's resolved config.json a
// few folders up and takes its data.promptTemplate and
// data.endOfConversationToken; any other folder gets the defaults. Flags win
// over both (the callers apply them).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defaultConfig } from '../config/defaults.js';
import type { ChatFormat } from './conversation.js';

/** How far above a model folder a run's config.json can be (ppo/checkpoints/step-N/actor). */
const MAX_LEVELS = 4;

export interface FoundFormat {
  format: ChatFormat;
  /** The run config it came from; null: the defaults. */
  source: string | null;
}

export function trainingFormat(modelDir: string): FoundFormat {
  let dir = resolve(modelDir);
  for (let level = 0; level < MAX_LEVELS; level++) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
    const path = join(dir, 'config.json');
    if (!existsSync(path)) continue;
    let cfg: unknown;
    try {
      cfg = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      continue; // not a run's config: some other JSON file
    }
    const data = (cfg as { data?: { promptTemplate?: unknown; endOfConversationToken?: unknown } } | null)?.data;
    if (typeof data?.promptTemplate === 'string' && typeof data.endOfConversationToken === 'string') {
      return { format: { template: data.promptTemplate, eot: data.endOfConversationToken }, source: path };
    }
  }
  const d = defaultConfig().data;
  return { format: { template: d.promptTemplate, eot: d.endOfConversationToken }, source: null };
}
