// A multi-round conversation in the training format (src/data/format.ts):
// each past round is formatPrompt(question) + formatAnswer(answer, eot), the
// rounds joined by a space as DeepSpeed-Chat's chat.py joins them, and the new
// question formatted the same way, so the model sees
//   "Human: q1 Assistant: a1<|endoftext|> Human: q2 Assistant:".
// When that does not fit the context, the oldest rounds are left out first,
// then tokens are cut from the left (keeping the tokenizer's special prefix).
import { checkTemplate, formatAnswer, formatPrompt } from '../data/format.js';
import type { QTokenizer } from '../models/tokenizer.js';

export interface ChatFormat {
  /** Template with one '{prompt}', e.g. 'Human: {prompt} Assistant:'. */
  template: string;
  /** Appended to every past answer, e.g. '<|endoftext|>'. */
  eot: string;
}

export interface Round {
  question: string;
  answer: string;
}

export interface FittedPrompt {
  text: string;
  ids: number[];
  /** Oldest rounds left out of the prompt to fit. */
  roundsLeftOut: number;
  /** Tokens cut from the left after that (when the newest question alone is too long). */
  tokensCut: number;
}

export class Conversation {
  private readonly rounds: Round[] = [];

  constructor(readonly format: ChatFormat) {
    checkTemplate(format.template);
  }

  get history(): readonly Round[] {
    return this.rounds;
  }

  add(question: string, answer: string): void {
    this.rounds.push({ question, answer });
  }

  clear(): void {
    this.rounds.length = 0;
  }

  /** The model's text for a new question after the rounds from `first` on. */
  promptText(question: string, first = 0): string {
    const { template, eot } = this.format;
    const past = this.rounds.slice(first).map((r) => formatPrompt(r.question, template) + formatAnswer(r.answer, eot));
    return [...past, formatPrompt(question, template)].join(' ');
  }

  /** The prompt for `question` in at most `budget` tokens (the tokenizer's special prefix included). */
  fit(tok: QTokenizer, question: string, budget: number): FittedPrompt {
    const prefix = tok.encode('', { addSpecialTokens: true });
    if (!Number.isInteger(budget) || budget <= prefix.length) {
      throw new Error(`chat: a prompt budget of ${budget} tokens leaves no room after the tokenizer's ${prefix.length} special prefix token(s); lower --max-new-tokens`);
    }
    for (let first = 0; ; first++) {
      const text = this.promptText(question, first);
      const body = tok.encode(text, { addSpecialTokens: false });
      if (prefix.length + body.length <= budget || first === this.rounds.length) {
        const keep = Math.min(body.length, budget - prefix.length);
        return { text, ids: [...prefix, ...body.slice(body.length - keep)], roundsLeftOut: first, tokensCut: body.length - keep };
      }
    }
  }
}
