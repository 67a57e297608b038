// `quartet init-model`: writes a randomly initialised checkpoint folder of any
// supported family and size, with a byte-level BPE tokenizer.
import { parseArgs } from 'node:util';
import type { Command } from '../main.js';
import { SUPPORTED_MODEL_TYPES } from '../../models/config.js';
import { initModelFolder } from '../../models/init.js';

const USAGE = `Usage: npx quartet init-model --family TYPE --layers N --hidden C --heads NH --vocab V --out DIR
                          [--kv-heads NKV] [--intermediate I] [--max-positions P] [--tie | --no-tie] [--seed S]

Writes DIR/config.json, DIR/model.safetensors, DIR/tokenizer.json and DIR/tokenizer_config.json:
a random model that Hugging Face transformers loads unchanged.

  --family TYPE        ${SUPPORTED_MODEL_TYPES.join(', ')}
  --layers N           decoder blocks
  --hidden C           model width (a multiple of --heads)
  --heads NH           attention heads
  --kv-heads NKV       key/value heads for grouped-query attention (llama, mistral, qwen2; default NH)
  --intermediate I     MLP width (default 4C; 8C/3 rounded up to a multiple of 8 for SwiGLU families)
  --vocab V            vocabulary size, at least 257 (GPT-2's byte-level BPE cut to V tokens; eos is the last)
  --max-positions P    context length (default 1024)
  --tie, --no-tie      tie the LM head to the token embedding (default: the family's usual choice)
  --seed S             initialisation seed (default 0)`;

const command: Command = {
  summary: 'Write a randomly initialised model folder of any family and size',
  async run(argv) {
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          family: { type: 'string' }, layers: { type: 'string' }, hidden: { type: 'string' }, heads: { type: 'string' },
          'kv-heads': { type: 'string' }, intermediate: { type: 'string' }, vocab: { type: 'string' },
          'max-positions': { type: 'string' }, tie: { type: 'boolean' }, 'no-tie': { type: 'boolean' },
          seed: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
        },
      }));
    } catch (err) {
      console.error(`quartet init-model: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    for (const k of ['family', 'layers', 'hidden', 'heads', 'vocab', 'out']) {
      if (values[k] === undefined) {
        console.error(`quartet init-model: --${k} is required\n\n${USAGE}`);
        return 2;
      }
    }
    const int = (k: string): number | undefined => {
      if (values[k] === undefined) return undefined;
      const n = Number(values[k]);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`init-model: --${k} must be a positive integer, got '${values[k]}'`);
      return n;
    };
    if (values.tie && values['no-tie']) throw new Error('init-model: give --tie or --no-tie, not both');
    const out = values.out as string;
    const cfg = initModelFolder(out, {
      modelType: values.family as string, layers: int('layers')!, hidden: int('hidden')!, heads: int('heads')!,
      kvHeads: int('kv-heads'), intermediate: int('intermediate'), vocab: int('vocab')!, maxPositions: int('max-positions'),
      tie: values.tie ? true : values['no-tie'] ? false : undefined,
      seed: values.seed === undefined ? 0 : Number(values.seed),
    });
    console.log(`wrote ${out}: ${cfg.modelType}, ${cfg.layers} layer${cfg.layers === 1 ? '' : 's'}, hidden ${cfg.hidden}, ${cfg.heads} heads (${cfg.kvHeads} kv), vocab ${cfg.vocabSize}`);
    return 0;
  },
};

export default command;
