// `quartet generate`: continues one or more prompts with a checkpoint folder,
// greedy by default; --json prints the token ids and per-token log-probs as an
// OpenAI-style completion with `logprobs`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../main.js';
import { loadModel } from '../../models/checkpoint.js';
import { generate } from '../../models/generate.js';
import { QTokenizer, padBatch } from '../../models/tokenizer.js';

const USAGE = `Usage: npx quartet generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3)... [--max-new-tokens N]
                        [--temperature T] [--top-k K] [--top-p P] [--seed S] [--no-eos] [--json]

Continues each prompt (repeat --prompt or --prompt-ids for a batch; prompts are left-padded).
Greedy unless --temperature, --top-k or --top-p is given. Stops a row at the model's EOS token.

  --model DIR          a checkpoint folder (config.json, model.safetensors; tokenizer.json for --prompt)
  --prompt TEXT        a text prompt (encoded with DIR/tokenizer.json)
  --prompt-ids LIST    a prompt as comma-separated token ids
  --max-new-tokens N   tokens to generate (default 32)
  --temperature T      sampling temperature (> 0)
  --top-k K            sample among the K most likely tokens
  --top-p P            sample among the most likely tokens whose probability reaches P
  --seed S             sampling seed (default 0)
  --no-eos             do not stop at EOS
  --json               print JSON: token ids, tokens and the log-prob of each generated token`;

const command: Command = {
  summary: 'Generate text from a model folder (greedy or sampled; --json for ids and log-probs)',
  async run(argv) {
    let values: Record<string, string | string[] | boolean | undefined>;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          model: { type: 'string' }, prompt: { type: 'string', multiple: true }, 'prompt-ids': { type: 'string', multiple: true },
          'max-new-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' },
          seed: { type: 'string' }, 'no-eos': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        },
      }));
    } catch (err) {
      console.error(`quartet generate: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const dir = values.model as string | undefined;
    const texts = (values.prompt as string[] | undefined) ?? [];
    const idLists = (values['prompt-ids'] as string[] | undefined) ?? [];
    if (!dir || texts.length + idLists.length === 0) {
      console.error(`quartet generate: --model and at least one --prompt or --prompt-ids are required\n\n${USAGE}`);
      return 2;
    }
    const num = (k: string, check: (n: number) => boolean, what: string): number | undefined => {
      if (values[k] === undefined) return undefined;
      const n = Number(values[k]);
      if (!check(n)) throw new Error(`generate: --${k} must be ${what}, got '${values[k]}'`);
      return n;
    };
    const maxNewTokens = num('max-new-tokens', (n) => Number.isInteger(n) && n > 0, 'a positive integer') ?? 32;
    const temperature = num('temperature', (n) => n > 0, 'a number > 0');
    const topK = num('top-k', (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
    const topP = num('top-p', (n) => n > 0 && n <= 1, 'in (0, 1]');
    const seed = num('seed', Number.isFinite, 'a number') ?? 0;

    const tok = existsSync(join(dir, 'tokenizer.json')) ? QTokenizer.load(dir) : null;
    if (texts.length && !tok) throw new Error(`generate: --prompt needs ${join(dir, 'tokenizer.json')}; give --prompt-ids instead`);
    const model = loadModel(dir);
    const V = model.cfg.vocabSize;
    const rows: number[][] = texts.map((s) => tok!.encode(s));
    for (const list of idLists) {
      const ids = list.split(',').map((s) => Number(s.trim()));
      const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= V);
      if (bad !== undefined) throw new Error(`generate: --prompt-ids '${list}' has ${bad}, not a token id of this model (0..${V - 1})`);
      rows.push(ids);
    }
    if (rows.some((r) => r.length === 0)) throw new Error('generate: a prompt encodes to no tokens');
    const pad = tok?.padId ?? model.cfg.padTokenId ?? model.cfg.eosTokenIds[0] ?? 0;
    const batch = padBatch(rows, pad, { padding: 'left' });
    const r = generate(model, batch.ids, batch.mask, batch.B, batch.T, {
      maxNewTokens, temperature, topK, topP, seed, padTokenId: pad, logprobs: true,
      eosTokenId: values['no-eos'] ? null : tok?.eosId ?? undefined,
    });
    const eos = new Set(values['no-eos'] ? [] : tok?.eosId != null ? [tok.eosId] : model.cfg.eosTokenIds);
    const choices = rows.map((prompt, b) => {
      const ids: number[] = [];
      const lps: number[] = [];
      for (let s = 0; s < r.newTokens; s++) {
        if (!r.mask[b * r.T + r.promptLength + s]) break;
        ids.push(r.sequences[b * r.T + r.promptLength + s]);
        lps.push(r.logprobs![b * r.newTokens + s]);
      }
      const stopped = ids.length > 0 && eos.has(ids[ids.length - 1]);
      return {
        index: b,
        text: tok ? tok.decode(stopped ? ids.slice(0, -1) : ids) : null,
        finish_reason: stopped ? 'stop' : 'length',
        prompt_token_ids: prompt,
        token_ids: ids,
        logprobs: { tokens: tok ? ids.map((id) => tok.decode([id])) : null, token_logprobs: lps },
      };
    });
    if (values.json) {
      const usage = { prompt_tokens: rows.reduce((a, x) => a + x.length, 0), completion_tokens: choices.reduce((a, c) => a + c.token_ids.length, 0) };
      console.log(JSON.stringify({ object: 'text_completion', model: dir, choices, usage }));
    } else {
      for (const c of choices) console.log(c.text ?? c.token_ids.join(','));
    }
    model.dispose();
    return 0;
  },
};

export default command;
