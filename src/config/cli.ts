// Command-line overrides of the configuration: `--actor.lr=1e-4` or
// `--actor.lr 1e-4`. Each value is read as the type its key declares in the
// schema (numbers, booleans, comma-separated or JSON lists, 'null'), so the
// command line and config files reach validation as the same typed values.
import { schema } from './defaults.js';
import { flattenSchema, type Field } from './schema.js';
import { ConfigError, suggestKey, type ConfigProblem } from './validate.js';

const fields = new Map(flattenSchema(schema));
const sectionNames = new Set([...fields.keys()].flatMap((k) => k.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))));

/** Flags of `quartet train` and the step commands that stand for config keys. */
export const flagAliases: Record<string, string> = {
  'actor-model': 'actor.model',
  'critic-model': 'critic.model',
  'reward-model': 'reward.model',
  'output-dir': 'outputDir',
  'data': 'data.paths',
  'steps': 'steps',
  'seed': 'seed',
  'resume': 'resume',
};

/**
 * DeepSpeed-Chat's flag names (the main.py of training/step1, step2 and step3) and the Quartet
 * keys that stand for them; docs/deepspeed-chat.md has the whole table.
 */
export const deepspeedChatFlags: Record<string, string> = {
  model_name_or_path: '--actor-model (step 1) or --reward-model (step 2)',
  actor_model_name_or_path: '--actor-model',
  critic_model_name_or_path: '--reward-model (the critic starts from the reward model; --critic.model to differ)',
  data_path: '--data',
  data_split: '--data.split',
  data_output_path: '--data.cacheDir',
  output_dir: '--output-dir',
  max_seq_len: '--data.maxPromptLen and --data.maxAnswerLen (their sum)',
  max_prompt_seq_len: '--data.maxPromptLen',
  max_answer_seq_len: '--ppo.maxNewTokens',
  end_of_conversation_token: '--data.endOfConversationToken',
  per_device_train_batch_size: '--sft.batchSize (step 1), --rm.batchSize (step 2) or --dpo.batchSize',
  per_device_eval_batch_size: '--sft.evalBatchSize, --rm.evalBatchSize or --dpo.evalBatchSize',
  per_device_generation_batch_size: '--ppo.promptBatchSize',
  per_device_training_batch_size: '--ppo.trainBatchSize',
  generation_batches: '--ppo.generationBatches',
  ppo_epochs: '--ppo.ppoEpochs',
  num_train_epochs: '--sft.epochs, --rm.epochs or --ppo.epochs',
  learning_rate: '--sft.lr (step 1) or --reward.lr (step 2)',
  actor_learning_rate: '--actor.lr',
  critic_learning_rate: '--critic.lr',
  weight_decay: '--sft.weightDecay (step 1) or --reward.weightDecay (step 2)',
  actor_weight_decay: '--actor.weightDecay',
  critic_weight_decay: '--critic.weightDecay',
  lr_scheduler_type: '--sft.schedule, --reward.schedule, --actor.schedule or --critic.schedule',
  num_warmup_steps: '--sft.warmup, --reward.warmup, --actor.warmup or --critic.warmup',
  gradient_accumulation_steps: '--sft.gradAccum or --rm.gradAccum',
  gradient_checkpointing: '--actor.gradientCheckpointing (or --reward.gradientCheckpointing)',
  actor_gradient_checkpointing: '--actor.gradientCheckpointing',
  critic_gradient_checkpointing: '--critic.gradientCheckpointing',
  disable_dropout: '--sft.dropout=false',
  disable_actor_dropout: '--actor.dropout=false (the default)',
  disable_critic_dropout: '--critic.dropout=false (the default)',
  lora_dim: '--actor.lora.dim (or --reward.lora.dim, --critic.lora.dim)',
  actor_lora_dim: '--actor.lora.dim',
  critic_lora_dim: '--critic.lora.dim',
  lora_module_name: '--actor.lora.moduleNames',
  actor_lora_module_name: '--actor.lora.moduleNames',
  critic_lora_module_name: '--critic.lora.moduleNames',
  only_optimize_lora: '--actor.lora.onlyOptimizeLora',
  lora_learning_rate: '--actor.lora.lr',
  unsupervised_dataset_name: '--data.ptxPaths',
  unsup_coef: '--ppo.ptxCoef',
  enable_ema: '--ppo.ema',
  enable_hybrid_engine: 'nothing: the actor always generates and trains on the same weights',
  enable_tensorboard: 'nothing yet: metrics are in <run>/metrics.jsonl and report.html',
  zero_stage: 'nothing: each role process holds its whole model (place roles with --ROLE.devices)',
  offload: 'nothing: each role process holds its whole model',
  dtype: 'nothing: training is in f32',
  eval_interval: '--sft.evalEvery or --rm.evalEvery',
};

export interface ParsedArgs {
  /** Config files named by --config (applied in order, before the overrides). */
  configFiles: string[];
  /** Overrides as a nested object, ready for resolveConfig. */
  overrides: Record<string, unknown>;
  /** Arguments that are not configuration (positional words, --help). */
  rest: string[];
}

/** Reads a command-line string as the value type of `f`; throws a message on failure. */
export function parseValue(key: string, f: Field<unknown>, raw: string): unknown {
  if (f.nullable && raw === 'null') return null;
  switch (f.kind) {
    case 'number':
    case 'integer': {
      const v = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(v)) throw new Error(`expected ${f.kind === 'integer' ? 'an integer' : 'a number'}, got '${raw}'`);
      return v;
    }
    case 'boolean':
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      throw new Error(`expected true or false, got '${raw}'`);
    case 'string':
    case 'enum':
      return raw;
    case 'stringList':
    case 'enumList':
      if (raw.trimStart().startsWith('[')) {
        try {
          return JSON.parse(raw);
        } catch (err) {
          throw new Error(`expected a JSON list, got '${raw}' (${(err as Error).message})`);
        }
      }
      return raw === '' ? [] : raw.split(',').map((s) => s.trim());
  }
  throw new Error(`no command-line form for key ${key}`);
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}

/**
 * Splits argv into config files, config overrides and the rest. A flag whose
 * key is boolean may stand alone (`--resume`); any other takes `=value` or the
 * next argument. Unknown `--a.b` keys are errors naming the nearest known key.
 */
export function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = { configFiles: [], overrides: {}, rest: [] };
  const problems: ConfigProblem[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--') || arg === '--help' || arg === '--') {
      out.rest.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let raw: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === 'config') {
      raw ??= argv[++i];
      if (raw === undefined) problems.push({ key: '--config', message: 'needs a file name' });
      else out.configFiles.push(raw);
      continue;
    }
    const key = flagAliases[name] ?? name;
    const f = fields.get(key);
    if (!f && sectionNames.has(key)) {
      problems.push({ key: `--${name}`, message: `is a group of keys; set one of them, e.g. --${[...fields.keys()].find((k) => k.startsWith(key + '.'))}` });
      if (raw === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) i++;
      continue;
    }
    if (!f) {
      const near = suggestKey(key);
      const ds = Object.hasOwn(deepspeedChatFlags, name) ? deepspeedChatFlags[name] : undefined;
      problems.push({
        key: `--${name}`,
        message: ds ? `is DeepSpeed-Chat's flag; Quartet's is ${ds} (docs/deepspeed-chat.md)` : `unknown option${near ? ` (did you mean '--${near}'?)` : ''}`,
      });
      if (raw === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) i++;
      continue;
    }
    if (raw === undefined) {
      if (f.kind === 'boolean' && (i + 1 >= argv.length || !['true', 'false', '0', '1'].includes(argv[i + 1]))) raw = 'true';
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) raw = argv[++i];
      else {
        problems.push({ key: `--${name}`, message: 'needs a value' });
        continue;
      }
    }
    try {
      setPath(out.overrides, key, parseValue(key, f, raw));
    } catch (err) {
      problems.push({ key: `--${name}`, message: (err as Error).message });
    }
  }
  if (problems.length) throw new ConfigError('command line', problems);
  return out;
}
