// The shipped custom reward process in JavaScript: `score` turns each answer
// into text and scores it with a JS function, in a piscina pool of one
// worker thread per core of the role's placement.
//
// Plan: { reward: { replicas: 1, devices: ['cpu:0-1'], module: 'actors/reward-js.js',
//                   args: { scorer: 'afinn' | '/path/to/scorer.js', tokenizer?: '/path/to/tokenizer.json' } } }
// A scorer module exports `score(text) -> number` (sync or async).
//
// Request (docs/protocol.md): meta.answers, the decoded answers the
// coordinator sends with every score call. Without them (a caller of its
// own): meta.texts, the answers as strings, or tensors `ids` and `mask` i32
// [B, T] with meta.promptLength P, the answer of row b being its real tokens
// from position P on, decoded with args.tokenizer, special tokens skipped.
// Reply: `scores` f32 [B]; metrics: mean_score.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Piscina } from 'piscina';
import { serveRole, type Request } from '../src/runtime/role-server.js';
import { RuntimeError } from '../src/runtime/protocol.js';
import type { ScoreTask } from './reward-js-worker.js';

function loadTokenizer(path: string): Tokenizer {
  // A tokenizer.json, or the model folder that holds it (QUARTET_ARGS.tokenizer of a command reward).
  const file = existsSync(join(path, 'tokenizer.json')) ? join(path, 'tokenizer.json') : path;
  const config = join(dirname(file), 'tokenizer_config.json');
  try {
    return new Tokenizer(JSON.parse(readFileSync(file, 'utf8')), existsSync(config) ? JSON.parse(readFileSync(config, 'utf8')) : {});
  } catch (e) {
    throw new Error(`reward-js: args.tokenizer ${file}: ${(e as Error).message}`);
  }
}

function answers(req: Request, tokenizer: Tokenizer | null): string[] {
  // What the coordinator sends with every score call (docs/protocol.md): the decoded answers.
  const sent = req.meta.answers;
  if (sent !== undefined) {
    if (!Array.isArray(sent) || !sent.every((x) => typeof x === 'string')) throw new RuntimeError('bad_message', `score: meta.answers must be a list of strings`);
    return sent;
  }
  const texts = req.meta.texts;
  if (texts !== undefined) {
    if (!Array.isArray(texts) || !texts.every((x) => typeof x === 'string')) throw new RuntimeError('bad_message', `score: meta.texts must be a list of strings`);
    return texts;
  }
  const ids = req.tensors.ids, mask = req.tensors.mask;
  if (!ids || !mask) throw new RuntimeError('bad_message', `score: send tensors 'ids' and 'mask' i32 [B, T] with meta.promptLength, or meta.texts`);
  if (ids.dtype !== 'i32' || ids.shape.length !== 2) throw new RuntimeError('bad_message', `score: 'ids' must be i32 [B, T], got ${ids.dtype}[${ids.shape}]`);
  const [B, T] = ids.shape;
  if (mask.dtype !== 'i32' || mask.shape.join() !== ids.shape.join()) throw new RuntimeError('bad_message', `score: 'mask' must be i32 [${B}, ${T}], got ${mask.dtype}[${mask.shape}]`);
  const P = req.meta.promptLength;
  if (!Number.isSafeInteger(P) || (P as number) < 0 || (P as number) > T) throw new RuntimeError('bad_message', `score: meta.promptLength must be an integer in [0, ${T}], got ${JSON.stringify(P)}`);
  if (!tokenizer) throw new RuntimeError('bad_message', `score: token ids need args.tokenizer (a tokenizer.json); or send meta.texts`);
  const id = ids.data as Int32Array, m = mask.data as Int32Array;
  return Array.from({ length: B }, (_, b) => {
    const answer: number[] = [];
    for (let t = P as number; t < T; t++) if (m[b * T + t]) answer.push(id[b * T + t]);
    return tokenizer.decode(answer, { skip_special_tokens: true });
  });
}

await serveRole(async (ctx) => {
  // As a command reward (`node dist/actors/reward-js.js SCORER.js`) the scorer comes on the command line.
  const scorer = ctx.args.scorer ?? process.argv[2] ?? 'afinn';
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
