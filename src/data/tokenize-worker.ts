// A piscina worker that tokenises formatted rows. Each worker loads the
// tokenizer of a folder once and keeps it for the tasks that follow.
import { QTokenizer } from '../models/tokenizer.js';
import type { FormattedRow } from './format.js';
import { tokenizeRows, type TokenTable } from './token-table.js';

export interface TokenizeTask {
  /** Folder holding tokenizer.json (+ tokenizer_config.json). */
  tokenizerDir: string;
  rows: FormattedRow[];
}

const loaded = new Map<string, QTokenizer>();

export default function tokenize(task: TokenizeTask): TokenTable {
  let tok = loaded.get(task.tokenizerDir);
  if (!tok) {
    tok = QTokenizer.load(task.tokenizerDir);
    loaded.set(task.tokenizerDir, tok);
  }
  return tokenizeRows(tok, task.rows);
}
