// The shipped custom reward process in JavaScript: `score` turns each answer
// into text and scores it with a JS function, in a piscina pool of one
// worker thread per core of the role's placement.
//
// Plan: { reward: { replicas: 1, devices: ['cpu:0-1'], module: 'actors/reward-js.js',
//                   args: { scorer: 'afinn' | '/path/to/scorer.js', tokenizer?: '/path/to/tokenizer.json' } } }
// A scorer module exports `score(text) -> number` (sync or async).
//
// Request: either meta.texts (the answers as strings), or tensors
// `sequences` i32 [B, T] and `prompt_lengths` i32 [B] (the answer is the
// tokens after the prompt, decoded with args.tokenizer, special tokens
// skipped). Reply: `scores` f32 [B]; metrics: mean_score.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Piscina } from 'piscina';
import { serveRole, type Request } from '../src/runtime/role-server.js';
import { RuntimeError } from '../src/runtime/protocol.js';
import type { ScoreTask } from './reward-js-worker.js';

function loadTokenizer(file: string): Tokenizer {
  const config = join(dirname(file), 'tokenizer_config.json');
  try {
    return new Tokenizer(JSON.parse(readFileSync(file, 'utf8')), existsSync(config) ? JSON.parse(readFileSync(config, 'utf8')) : {});
  } catch (e) {
    throw new Error(`reward-js: args.tokenizer ${file}: ${(e as Error).message}`);
  }
}

function answers(req: Request, tokenizer: Tokenizer | null): string[] {
  const texts = req.meta.texts;
  if (texts !== undefined) {
    if (!Array.isArray(texts) || !texts.every((x) => typeof x === 'string')) throw new RuntimeError('bad_message', `score: meta.texts must be a list of strings`);
    return texts;
  }
  const seq = req.tensors.sequences, lens = req.tensors.prompt_lengths;
  if (!seq || !lens) throw new RuntimeError('bad_message', `score: send meta.texts, or tensors 'sequences' i32 [B, T] and 'prompt_lengths' i32 [B]`);
  if (seq.dtype !== 'i32' || seq.shape.length !== 2) throw new RuntimeError('bad_message', `score: 'sequences' must be i32 [B, T], got ${seq.dtype}[${seq.shape}]`);
  const [B, T] = seq.shape;
  if (lens.dtype !== 'i32' || lens.shape.length !== 1 || lens.shape[0] !== B) throw new RuntimeError('bad_message', `score: 'prompt_lengths' must be i32 [${B}], got ${lens.dtype}[${lens.shape}]`);
  if (!tokenizer) throw new RuntimeError('bad_message', `score: token sequences need args.tokenizer (a tokenizer.json); or send meta.texts`);
  const ids = seq.data as Int32Array, pl = lens.data as Int32Array;
  return Array.from({ length: B }, (_, b) => {
    if (pl[b] < 0 || pl[b] > T) throw new RuntimeError('bad_message', `score: prompt_lengths[${b}] = ${pl[b]} is outside [0, ${T}]`);
    return tokenizer.decode(Array.from(ids.subarray(b * T + pl[b], (b + 1) * T)), { skip_special_tokens: true });
  });
}

await serveRole(async (ctx) => {
  const scorer = ctx.args.scorer ?? 'afinn';
  if (typeof scorer !== 'string') throw new Error(`reward-js: args.scorer must be 'afinn' or a module path`);
  const tokenizer = typeof ctx.args.tokenizer === 'string' ? loadTokenizer(ctx.args.tokenizer) : null;
  const threads = Math.max(1, ctx.threads);
  const pool = new Piscina<ScoreTask, number[]>({ filename: new URL('./reward-js-worker.js', import.meta.url).href, minThreads: threads, maxThreads: threads });
  // Load the scorer now, so that a bad one stops the start with a clear error.
  await pool.run({ texts: [], scorer });
  return {
    concurrent: true,
    methods: {
      score: async (req) => {
        const texts = answers(req, tokenizer);
        const per = Math.ceil(texts.length / threads) || 1;
        const chunks: Promise<number[]>[] = [];
        for (let i = 0; i < texts.length; i += per) chunks.push(pool.run({ texts: texts.slice(i, i + per), scorer }));
        const scores = Float32Array.from((await Promise.all(chunks)).flat());
        const mean = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
        return { tensors: { scores: { dtype: 'f32', shape: [scores.length], data: scores } }, metrics: { mean_score: mean } };
      },
    },
    onShutdown: () => pool.destroy(),
    stats: () => ({ pool_threads: pool.threads.length, scorer }),
  };
});
