// Turning a dataset row into the text the model sees, DeepSpeed-Chat style:
// "Human: <prompt> Assistant:" followed by " <answer><|endoftext|>".
// The public RLHF sets (Dahoas/*) already hold "\n\nHuman: ... \n\nAssistant:"
// in their prompts; a prompt that ends with "Assistant:" is therefore taken as
// formatted and left alone.
import type { RawRow } from './rows.js';

export interface FormatOptions {
  /** Template with one '{prompt}', e.g. 'Human: {prompt} Assistant:'. */
  promptTemplate: string;
  /** Appended to every answer, e.g. '<|endoftext|>'. */
  endOfConversationToken: string;
}

export interface FormattedRow {
  prompt: string;
  chosen: string;
  rejected: string | null;
}

export function checkTemplate(template: string): void {
  const n = template.split('{prompt}').length - 1;
  if (n !== 1) throw new Error(`data.promptTemplate must contain '{prompt}' exactly once, got '${template}'`);
}

export function formatPrompt(prompt: string, template: string): string {
  if (/Assistant:\s*$/.test(prompt)) return prompt.replace(/\s+$/, '');
  return template.replace('{prompt}', prompt.trim());
}

/** An answer starts with a space after "Assistant:" and ends with the end-of-conversation token. */
export function formatAnswer(answer: string, eot: string): string {
  const spaced = /^\s/.test(answer) ? answer : ` ${answer}`;
  return spaced.replace(/\s+$/, '') + eot;
}

export function formatRow(row: RawRow, o: FormatOptions): FormattedRow {
  return {
    prompt: formatPrompt(row.prompt, o.promptTemplate),
    chosen: formatAnswer(row.chosen, o.endOfConversationToken),
    rejected: row.rejected === null ? null : formatAnswer(row.rejected, o.endOfConversationToken),
  };
}
