// `quartet chat`: a multi-round conversation with a checkpoint folder, as
// DeepSpeed-Chat's chat.py, reading questions line by line from a terminal or
// a pipe (a scripted conversation). Answers are printed token by token as they
// are generated and end at EOS, at --max-new-tokens, or where the model starts
// the next "Human:" turn.
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Command } from '../main.js';
import { StreamDecoder, stopMarkers } from '../../chat/answer.js';
import { Conversation } from '../../chat/conversation.js';
import { trainingFormat } from '../../chat/run-format.js';
import { SAMPLING_OPTIONS, type FlagValues, modelFolderProblem, newTokensFor, numberFlag, samplingFlags } from '../../chat/flags.js';
import { streamGenerate } from '../../chat/stream.js';
import { defaultConfig } from '../../config/defaults.js';
import { loadModel } from '../../models/checkpoint.js';
import { QTokenizer } from '../../models/tokenizer.js';
import { Rng } from '../../tensor/index.js';

const data = defaultConfig().data;

const USAGE = `Usage: npx quartet chat --model DIR [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
                    [--template TEXT] [--eot TEXT] [--show-prompt]

Talks with a model folder (config.json, model.safetensors, tokenizer.json), one question
per line from the terminal or a pipe. The history is kept and sent with each question,
the oldest rounds left out when it outgrows the model's context.
Type 'clear' to forget the history and 'quit' (or end the input) to stop.

  --model DIR          the checkpoint folder, e.g. <run>/actor
  --max-new-tokens N   longest answer in tokens (default 128, or half the model's positions when fewer)
  --temperature T      sample with this temperature (> 0); greedy unless a sampling flag is given
  --top-k K            sample among the K most likely tokens
  --top-p P            sample among the most likely tokens whose probability reaches P
  --seed S             sampling seed (default 0)
  --template TEXT      prompt template with '{prompt}' (default: the run's data.promptTemplate when DIR
                       is inside a run directory, else '${data.promptTemplate}')
  --eot TEXT           end-of-conversation text after each past answer (default: the run's, else
                       '${data.endOfConversationToken}')
  --show-prompt        print the exact text sent to the model (stderr) before each answer`;

const command: Command = {
  summary: 'Talk with a model folder, multi-round, streaming the answers',
  async run(argv) {
    let values: FlagValues;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: {
          model: { type: 'string' }, 'max-new-tokens': { type: 'string' }, ...SAMPLING_OPTIONS,
          template: { type: 'string' }, eot: { type: 'string' }, 'show-prompt': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        },
      }));
    } catch (err) {
      console.error(`quartet chat: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const dir = values.model as string | undefined;
    if (!dir) {
      console.error(`quartet chat: --model is required\n\n${USAGE}`);
      return 2;
    }
    const problem = modelFolderProblem('chat', '--model', dir);
    if (problem) {
      console.error(`quartet ${problem}`);
      return 1;
    }
    const givenNewTokens = numberFlag('chat', values, 'max-new-tokens', (n) => Number.isInteger(n) && n > 0, 'a positive integer');
    const { seed, ...sampling } = samplingFlags('chat', values);
    const found = trainingFormat(dir);
    if (found.source && (values.template === undefined || values.eot === undefined)) console.error(`(prompt format from ${found.source})`);
    const format = { template: (values.template as string | undefined) ?? found.format.template, eot: (values.eot as string | undefined) ?? found.format.eot };
    const conv = new Conversation(format);
    const tok = QTokenizer.load(dir);
    const model = loadModel(dir);
    try {
      const maxNewTokens = newTokensFor('chat', givenNewTokens, 128, model.cfg.maxPositions, (line) => console.error(line));
      const budget = model.cfg.maxPositions - maxNewTokens;
      const eosIds = tok.eosId !== null ? [tok.eosId] : model.cfg.eosTokenIds;
      const markers = stopMarkers(format.template, format.eot);
      const rng = new Rng(seed);
      const interactive = Boolean(process.stdin.isTTY);
      const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive });
      rl.setPrompt('Human: ');
      // Ctrl-C at the prompt ends the chat as 'quit' does (readline would only pause).
      rl.on('SIGINT', () => rl.close());
      if (interactive) {
        console.log("(type 'clear' to forget the history, 'quit' to stop)");
        rl.prompt();
      }
      for await (const line of rl) {
        const question = line.trim();
        if (question === 'quit') break;
        if (question === 'clear') {
          conv.clear();
          console.log('(history cleared)');
        } else if (question !== '') {
          if (!interactive) console.log(`Human: ${question}`);
          const prompt = conv.fit(tok, question, budget);
          if (prompt.roundsLeftOut > 0 || prompt.tokensCut > 0) {
            console.error(`(left out ${prompt.roundsLeftOut} oldest round(s) and ${prompt.tokensCut} token(s) to fit the model's ${model.cfg.maxPositions} positions)`);
          }
          if (values['show-prompt']) console.error(`[prompt] ${JSON.stringify(prompt.text)}`);
          process.stdout.write('Assistant: ');
          const decoder = new StreamDecoder(tok, markers, new Set(eosIds));
          streamGenerate(model, prompt.ids, { maxNewTokens, ...sampling, eosTokenIds: eosIds }, rng, (id) => {
            const { piece, done } = decoder.push(id);
            if (piece) process.stdout.write(piece);
            return !done;
          });
          process.stdout.write(decoder.rest() + '\n');
          conv.add(question, decoder.answer());
        }
        if (interactive) rl.prompt();
      }
      rl.close();
    } finally {
      model.dispose();
    }
    return 0;
  },
};

export default command;
