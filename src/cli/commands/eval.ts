// `quartet eval prompts`: side-by-side answers of a baseline and a fine-tuned
// model (DeepSpeed-Chat's prompt_eval). `quartet eval rm`: pairwise accuracy
// and mean scores of a trained reward model over a dataset's pairs.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Command } from '../main.js';
import { SAMPLING_OPTIONS, type FlagValues, modelFolderProblem, newTokensFor, numberFlag, samplingFlags } from '../../chat/flags.js';
import { readConfig } from '../../models/config.js';
import type { ChatFormat } from '../../chat/conversation.js';
import { trainingFormat } from '../../chat/run-format.js';
import { defaultConfig } from '../../config/defaults.js';
import { VALUE_HEAD } from '../../models/checkpoint.js';
import { QTokenizer } from '../../models/tokenizer.js';
import { BUILTIN_PROMPTS, answerPrompts, readPrompts } from '../../eval/prompts.js';
import { evalRewardModel, loadPairs } from '../../eval/rm.js';

const data = defaultConfig().data;

const USAGE = `Usage: npx quartet eval prompts --baseline DIR --finetuned DIR [--prompts FILE] [--max-new-tokens N]
                          [--temperature T] [--top-k K] [--top-p P] [--seed S] [--batch-size B]
                          [--template TEXT] [--eot TEXT] [--json]
       npx quartet eval rm --model DIR --data PATH [--split train|test] [--batch-size B]
                       [--max-prompt-len N] [--max-answer-len N] [--template TEXT] [--eot TEXT]
                       [--skip-bad-rows] [--json]

eval prompts: the answers of both models to each prompt, one after the other (greedy unless
  a sampling flag is given). Prompts: FILE (.txt one a line, or .jsonl with "prompt"), else
  DeepSpeed-Chat's built-in six.
eval rm: scores every chosen/rejected pair of PATH (a JSONL/JSON file or a dataset folder)
  with the reward model in DIR (its trained ${VALUE_HEAD}); prints the pairwise accuracy and
  the mean chosen and rejected scores. --split picks a folder's train or test files (default all).

  --max-new-tokens N   longest answer (default 100, or half the positions) --batch-size B   rows per forward (default 8)
  --template TEXT      prompt template (default: the run's data.promptTemplate when the fine-tuned
                       or reward model folder is inside a run directory, else '${data.promptTemplate}')
  --eot TEXT           end-of-conversation text (default: the run's, else '${data.endOfConversationToken}')
  --max-prompt-len N   prompt tokens kept, from the end (default ${data.maxPromptLen})
  --max-answer-len N   answer tokens kept (default ${data.maxAnswerLen})
  --skip-bad-rows      report malformed rows (file:line) and go on, instead of stopping
  --json               print the results as JSON`;

function usageError(msg: string): number {
  console.error(`quartet eval: ${msg}\n\n${USAGE}`);
  return 2;
}

/** The prompt format: flags, else the run of `modelDir` (src/chat/run-format.ts), else the defaults. */
function formatOf(values: FlagValues, modelDir: string): ChatFormat {
  const found = trainingFormat(modelDir);
  if (found.source && (values.template === undefined || values.eot === undefined)) console.error(`(prompt format from ${found.source})`);
  return { template: (values.template as string | undefined) ?? found.format.template, eot: (values.eot as string | undefined) ?? found.format.eot };
}

const positive = (n: number) => Number.isInteger(n) && n > 0;

async function promptsCommand(values: FlagValues): Promise<number> {
  const baseline = values.baseline as string | undefined, finetuned = values.finetuned as string | undefined;
  if (!baseline || !finetuned) return usageError('eval prompts needs --baseline and --finetuned');
  for (const [flag, dir] of [['--baseline', baseline], ['--finetuned', finetuned]]) {
    const problem = modelFolderProblem('eval prompts', flag, dir);
    if (problem) {
      console.error(`quartet ${problem}`);
      return 1;
    }
  }
  const positions = Math.min(...[baseline, finetuned].map((d) => readConfig(d).maxPositions));
  const given = numberFlag('eval prompts', values, 'max-new-tokens', positive, 'a positive integer');
  const prompts = values.prompts ? readPrompts(values.prompts as string) : BUILTIN_PROMPTS;
  const sampling = samplingFlags('eval prompts', values);
  const greedy = sampling.temperature === undefined && sampling.topK === undefined && sampling.topP === undefined;
  const opts = {
    format: formatOf(values, finetuned),
    maxNewTokens: newTokensFor('eval prompts', given, 100, positions, (line) => console.error(line)),
    batchSize: numberFlag('eval prompts', values, 'batch-size', positive, 'a positive integer') ?? 8,
    ...sampling,
  };
  // One model in memory at a time.
  const base = answerPrompts(baseline, prompts, opts);
  const tuned = answerPrompts(finetuned, prompts, opts);
  if (values.json) {
    console.log(JSON.stringify(prompts.map((prompt, i) => ({ prompt, baseline: base[i], finetuned: tuned[i] }))));
    return 0;
  }
  const mode = greedy ? 'Greedy' : 'Sampled';
  prompts.forEach((prompt, i) => {
    console.log(`==========prompt ${i + 1}: ${prompt}`);
    console.log(`==========Baseline: ${mode}=========`);
    console.log(base[i]);
    console.log(`==========finetune: ${mode}=========`);
    console.log(tuned[i]);
  });
  console.log('====================prompt end=============================');
  return 0;
}

async function rmCommand(values: FlagValues): Promise<number> {
  const dir = values.model as string | undefined, path = values.data as string | undefined;
  if (!dir || !path) return usageError('eval rm needs --model and --data');
  const problem = modelFolderProblem('eval rm', '--model', dir);
  if (problem) {
    console.error(`quartet ${problem}`);
    return 1;
  }
  const split = values.split as string | undefined;
  if (split !== undefined && split !== 'train' && split !== 'test') return usageError(`--split must be 'train' or 'test', got '${split}'`);
  const int = (name: string, dflt: number) => numberFlag('eval rm', values, name, positive, 'a positive integer') ?? dflt;
  const tok = QTokenizer.load(dir);
  const format = formatOf(values, dir);
  const loaded = await loadPairs(path, tok, {
    template: format.template,
    eot: format.eot,
    maxPromptLen: int('max-prompt-len', data.maxPromptLen),
    maxAnswerLen: int('max-answer-len', data.maxAnswerLen),
    onBadRow: values['skip-bad-rows'] ? 'skip' : 'error',
    split: split ?? null,
  });
  for (const m of loaded.skipped) console.error(`skipped: ${m}`);
  if (loaded.withoutRejected > 0) console.error(`left out ${loaded.withoutRejected} row(s) without a rejected answer`);
  const r = evalRewardModel(dir, loaded.pairs, tok.padId, int('batch-size', 8));
  if (values.json) {
    console.log(JSON.stringify({ pairs: r.pairs, accuracy: r.accuracy, chosenMean: r.chosenMean, rejectedMean: r.rejectedMean, skipped: loaded.skipped.length, withoutRejected: loaded.withoutRejected }));
  } else {
    console.log(`pairs          ${r.pairs}`);
    console.log(`accuracy       ${r.accuracy.toFixed(4)}`);
    console.log(`chosen mean    ${r.chosenMean.toFixed(4)}`);
    console.log(`rejected mean  ${r.rejectedMean.toFixed(4)}`);
  }
  return 0;
}

const command: Command = {
  summary: 'Compare two models on prompts (eval prompts) or score a reward model on pairs (eval rm)',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (!sub) return usageError("say which evaluation: 'prompts' or 'rm'");
    if (sub === '--help' || sub === '-h') {
      console.log(USAGE);
      return 0;
    }
    if (sub !== 'prompts' && sub !== 'rm') return usageError(`unknown evaluation '${sub}' (expected 'prompts' or 'rm')`);
    const shared = { 'batch-size': { type: 'string' }, template: { type: 'string' }, eot: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
    const options: ParseArgsConfig['options'] = sub === 'prompts'
      ? { ...shared, ...SAMPLING_OPTIONS, 'max-new-tokens': { type: 'string' }, baseline: { type: 'string' }, finetuned: { type: 'string' }, prompts: { type: 'string' } }
      : { ...shared, model: { type: 'string' }, data: { type: 'string' }, split: { type: 'string' }, 'max-prompt-len': { type: 'string' }, 'max-answer-len': { type: 'string' }, 'skip-bad-rows': { type: 'boolean' } };
    let values: FlagValues;
    try {
      ({ values } = parseArgs({ args: rest, options }));
    } catch (err) {
      return usageError(`${sub}: ${(err as Error).message}`);
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    return sub === 'prompts' ? promptsCommand(values) : rmCommand(values);
  },
};

export default command;
