// Plain text for PPO's unsupervised "ptx" loss (InstructGPT's PPO-ptx,
// DeepSpeed-Chat's --unsupervised_dataset_name): documents are tokenised,
// joined with the end-of-text token between them, and cut into blocks of
// maxPromptLen + maxAnswerLen tokens, dropping the short remainder (as its
// group_texts does). The blocks come as SftExamples with empty prompts, so
// sftBatch makes their batches (every token after the first is a target).
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { QTokenizer } from '../models/tokenizer.js';
import type { DataContext } from './datasets.js';
import type { SftExamples } from './examples.js';
import { BadRowError, BadRows } from './rows.js';
import { jsonArrayElements } from './sources.js';

/** The texts of one file: a .txt file is one document; JSONL/JSON rows give their "text" field. */
export function ptxDocuments(file: string, text: string, bad: BadRows): string[] {
  const ext = extname(file).toLowerCase();
  if (ext === '.txt') return text.trim() ? [text] : [];
  if (ext !== '.jsonl' && ext !== '.json') throw new Error(`data.ptxPaths: '${file}' is not a .txt, .jsonl or .json file`);
  const items = ext === '.json' && text.trimStart().startsWith('[')
    ? jsonArrayElements(text)
    : text.split('\n').map((l, i) => ({ text: l, line: i + 1 })).filter((l) => l.text.trim() !== '');
  const docs: string[] = [];
  for (const item of items) {
    const origin = { file, line: item.line, unit: 'line' as const };
    let value: unknown;
    try {
      value = JSON.parse(item.text);
    } catch (err) {
      bad.report(new BadRowError(origin, `not valid JSON (${(err as Error).message})`));
      continue;
    }
    const t = (value as Record<string, unknown> | null)?.text;
    if (typeof t !== 'string') bad.report(new BadRowError(origin, `expected an object with a string 'text'`));
    else if (t.trim()) docs.push(t);
  }
  return docs;
}

export async function loadPtxBlocks(ctx: DataContext): Promise<{ blocks: SftExamples; blockLen: number; skipped: string[] }> {
  const { data } = ctx;
  if (data.ptxPaths.length === 0) throw new Error('data.ptxPaths: no plain-text data given for the ptx loss');
  const tok = QTokenizer.load(ctx.tokenizerDir);
  if (tok.eosId === null) throw new Error(`data.ptxPaths: the tokenizer in ${ctx.tokenizerDir} has no eos token to separate documents`);
  const blockLen = data.maxPromptLen + data.maxAnswerLen;
  const bad = new BadRows(data.onBadRow);
  const stream: number[] = [];
  for (const file of data.ptxPaths) {
    for (const doc of ptxDocuments(file, readFileSync(file, 'utf8'), bad)) {
      for (const id of tok.encode(doc, { addSpecialTokens: false })) stream.push(id);
      stream.push(tok.eosId);
    }
  }
  const n = Math.floor(stream.length / blockLen);
  if (n === 0) throw new Error(`data.ptxPaths: ${stream.length} tokens do not fill one block of ${blockLen} (maxPromptLen + maxAnswerLen)`);
  const ids = Int32Array.from(stream.slice(0, n * blockLen));
  const offsets = Int32Array.from({ length: n + 1 }, (_, i) => i * blockLen);
  ctx.log?.(`ptx data: ${n} blocks of ${blockLen} tokens from ${data.ptxPaths.length} file(s)`);
  return { blocks: { seqs: { n, offsets, ids }, promptLens: new Int32Array(n) }, blockLen, skipped: bad.skipped.map((e) => e.message) };
}
