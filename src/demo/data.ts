// Everything the embedded demo needs before a model exists, made once and
// cached in a folder: the Brown corpus split, a byte-level BPE trained on the
// pre-training part, and the prompt sets. A second run with the same options
// reads the folder back instead of recomputing (the options are the cache key).
//
// Folder layout:
//   tokenizer/tokenizer.json, tokenizer/tokenizer_config.json
//   pretrain.jsonl      {"text": document}      one line per document
//   sft.jsonl           {"prompt", "chosen"}    DeepSpeed-Chat fields; chosen is
//   rm_prompts.jsonl    {"prompt", "chosen"}    the corpus's own continuation
//   eval_prompts.jsonl  {"prompt", "chosen"}
//   manifest.json       the options that made the folder
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { documentText, loadBrown, splitCorpus } from './corpus.js';
import { trainBpe } from './bpe.js';
import { BpeEncoder } from './bpe-encoder.js';
import { writeJsonl } from './pairs.js';
import { defaultPromptOptions, makeDemoPrompts, type SftExample } from './prompts.js';
import { writeTokenizer } from './tokenizer-json.js';

export const EOS_TOKEN = '<|endoftext|>';
export const PAD_TOKEN = '<|pad|>';

export interface DemoDataOptions {
  seed: number;
  /** Share of Brown documents held out from all training. */
  heldOutFraction: number;
  vocabSize: number;
  /** The model's context; written as the tokenizer's model_max_length. */
  contextLength: number;
  maxAnswerTokens: number;
  maxPromptTokens: number;
  sftExamples: number;
  rmPrompts: number;
  evalPrompts: number;
}

/** The settings that fit in the PyTorch study made before the demo was built (docs/demo.md). */
export const demoDataDefaults: DemoDataOptions = {
  seed: 1,
  heldOutFraction: 0.1,
  vocabSize: 4096,
  contextLength: 64,
  maxAnswerTokens: 24,
  maxPromptTokens: 32,
  sftExamples: 5000,
  rmPrompts: 10000,
  evalPrompts: 128,
};

export interface DemoData {
  dir: string;
  tokenizerDir: string;
  /** Pre-training documents as plain text. */
  pretrainTexts: string[];
  /** Step 1 examples. */
  sft: SftExample[];
  /** Prompts for sampling preference pairs (step 2) and for PPO (step 3). */
  rm: SftExample[];
  /** Held-out prompts for the before/after evaluation. */
  eval: SftExample[];
  /** True when the folder was read back rather than made. */
  cached: boolean;
}

function checkOptions(opts: DemoDataOptions): void {
  for (const key of Object.keys(opts)) {
    if (!(key in demoDataDefaults)) throw new Error(`prepareDemoData: unknown option '${key}'`);
  }
  for (const key of Object.keys(demoDataDefaults) as (keyof DemoDataOptions)[]) {
    const v = opts[key];
    const ok = key === 'heldOutFraction' ? v > 0 && v < 1 : Number.isInteger(v) && (key === 'seed' ? v >= 0 : v > 0);
    if (!ok) throw new Error(`prepareDemoData: option '${key}' is invalid: ${v}`);
  }
  if (opts.maxPromptTokens + opts.maxAnswerTokens + 1 > opts.contextLength) {
    throw new Error(
      `prepareDemoData: maxPromptTokens (${opts.maxPromptTokens}) + maxAnswerTokens (${opts.maxAnswerTokens}) + 1 end token ` +
        `exceeds contextLength (${opts.contextLength})`,
    );
  }
}

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l, i) => {
    try {
      return JSON.parse(l) as T;
    } catch (err) {
      throw new Error(`${path}:${i + 1}: ${(err as Error).message}`);
    }
  });
}

function readExamples(path: string): SftExample[] {
  return readJsonl<{ prompt: string; chosen: string }>(path).map((r) => ({ prompt: r.prompt, answer: r.chosen }));
}

function readBack(dir: string, tokenizerDir: string): DemoData {
  return {
    dir,
    tokenizerDir,
    pretrainTexts: readJsonl<{ text: string }>(join(dir, 'pretrain.jsonl')).map((r) => r.text),
    sft: readExamples(join(dir, 'sft.jsonl')),
    rm: readExamples(join(dir, 'rm_prompts.jsonl')),
    eval: readExamples(join(dir, 'eval_prompts.jsonl')),
    cached: true,
  };
}

/** Loads the tokenizer a demo folder holds, through @huggingface/tokenizers. */
export function loadTokenizer(tokenizerDir: string): Tokenizer {
  const read = (f: string) => JSON.parse(readFileSync(join(tokenizerDir, f), 'utf8'));
  return new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}

/**
 * Makes the demo's data in `dir`, or reads it back when `dir` already holds
 * data made with the same options. `log` receives one line per stage.
 */
export function prepareDemoData(dir: string, options: Partial<DemoDataOptions> = {}, log: (line: string) => void = () => {}): DemoData {
  const opts: DemoDataOptions = { ...demoDataDefaults, ...options };
  checkOptions(opts);
  const tokenizerDir = join(dir, 'tokenizer');
  const manifestPath = join(dir, 'manifest.json');
  const manifest = JSON.stringify({ version: 1, options: opts }, null, 2) + '\n';
  if (existsSync(manifestPath) && readFileSync(manifestPath, 'utf8') === manifest) {
    log(`demo data: cached in ${dir}`);
    return readBack(dir, tokenizerDir);
  }
  // Options changed or a previous run stopped half-way: start clean, and
  // write the manifest last so that it marks a complete folder.
  rmSync(manifestPath, { force: true });
  mkdirSync(dir, { recursive: true });

  let t0 = performance.now();
  const split = splitCorpus(loadBrown(), { seed: opts.seed, heldOutFraction: opts.heldOutFraction });
  const pretrainTexts = split.pretrain.map(documentText);
  log(`demo data: Brown corpus, ${split.pretrain.length} documents for training, ${split.heldOut.length} held out (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  t0 = performance.now();
  const bpe = trainBpe(pretrainTexts, { vocabSize: opts.vocabSize, specialTokens: [EOS_TOKEN, PAD_TOKEN] });
  writeTokenizer(tokenizerDir, bpe, { modelMaxLength: opts.contextLength, bosToken: EOS_TOKEN, eosToken: EOS_TOKEN, padToken: PAD_TOKEN });
  log(`demo data: byte-level BPE with ${opts.vocabSize} tokens trained in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  t0 = performance.now();
  const encoder = new BpeEncoder(JSON.parse(readFileSync(join(tokenizerDir, 'tokenizer.json'), 'utf8')));
  const sets = makeDemoPrompts(
    split,
    { sft: opts.sftExamples, rm: opts.rmPrompts, eval: opts.evalPrompts },
    opts.seed,
    { ...defaultPromptOptions, maxAnswerTokens: opts.maxAnswerTokens, maxPromptTokens: opts.maxPromptTokens, countTokens: (s) => encoder.encode(s).length },
  );
  log(`demo data: ${sets.sft.length} SFT examples, ${sets.rm.length} reward-model prompts, ${sets.eval.length} evaluation prompts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  writeJsonl(join(dir, 'pretrain.jsonl'), pretrainTexts.map((text) => ({ text })));
  const rows = (examples: SftExample[]) => examples.map((e) => ({ prompt: e.prompt, chosen: e.answer }));
  writeJsonl(join(dir, 'sft.jsonl'), rows(sets.sft));
  writeJsonl(join(dir, 'rm_prompts.jsonl'), rows(sets.rm));
  writeJsonl(join(dir, 'eval_prompts.jsonl'), rows(sets.eval));
  writeFileSync(manifestPath, manifest);
  return { dir, tokenizerDir, pretrainTexts, ...sets, cached: false };
}
