// Reward-model evaluation over a dataset's preference pairs: pairwise accuracy
// (chosen scored above rejected) and the mean chosen and rejected scores,
// computed by the training code's own scorer (src/training/reward.ts: the
// value at each sequence's last real token) with the trained value head
// loaded from v_head.weight. DeepSpeed-Chat's rw_eval.py builds a fresh head
// and so scores with random weights; here a folder without one is an error.
import { readFileSync } from 'node:fs';
import { rmBatch } from '../data/batches.js';
import { rmPairs, type RmPairs } from '../data/examples.js';
import { checkTemplate, formatRow } from '../data/format.js';
import { BadRows } from '../data/rows.js';
import { listDatasetFiles, parseDataFile, type SplitName } from '../data/sources.js';
import { concatTables, tokenizeRows } from '../data/token-table.js';
import { VALUE_HEAD, loadModel } from '../models/checkpoint.js';
import { QTokenizer } from '../models/tokenizer.js';
import { RewardEngine } from '../training/reward.js';

export interface PairOptions {
  template: string;
  eot: string;
  maxPromptLen: number;
  maxAnswerLen: number;
  onBadRow: 'error' | 'skip';
  /** Only the files of this split of a dataset folder; null: every file. */
  split: SplitName | null;
}

export interface LoadedPairs {
  pairs: RmPairs;
  /** Messages (file:line) of skipped bad rows. */
  skipped: string[];
  /** Rows without a rejected answer, left out. */
  withoutRejected: number;
  files: string[];
}

/** The preference pairs of a dataset path (file or Hugging Face folder), tokenised and cut as RM training does. */
export async function loadPairs(path: string, tok: QTokenizer, o: PairOptions): Promise<LoadedPairs> {
  checkTemplate(o.template);
  const files = listDatasetFiles(path).filter((f) => o.split === null || f.split === o.split);
  if (files.length === 0) throw new Error(`eval rm: dataset '${path}' has no ${o.split} files`);
  const bad = new BadRows(o.onBadRow);
  const tables = [];
  for (const f of files) {
    const rows = await parseDataFile(f.path, readFileSync(f.path), bad);
    tables.push(tokenizeRows(tok, rows.map((r) => formatRow(r, { promptTemplate: o.template, endOfConversationToken: o.eot }))));
  }
  const limits = { maxPromptLen: o.maxPromptLen, maxAnswerLen: o.maxAnswerLen, specialPrefix: tok.encode('', { addSpecialTokens: true }) };
  const { examples, stats } = rmPairs(concatTables(tables), limits);
  if (examples.chosen.n === 0) throw new Error(`eval rm: '${path}' has no pair with both a chosen and a rejected answer`);
  return { pairs: examples, skipped: bad.skipped.map((e) => e.message), withoutRejected: stats.withoutRejected, files: files.map((f) => f.path) };
}

export interface RmEvalResult {
  pairs: number;
  /** Share of pairs whose chosen score is above the rejected one. */
  accuracy: number;
  chosenMean: number;
  rejectedMean: number;
  chosenScores: Float32Array;
  rejectedScores: Float32Array;
}

/** Scores every pair with the reward model in `dir`, `batchSize` pairs per forward. */
export function evalRewardModel(dir: string, pairs: RmPairs, padId: number, batchSize: number): RmEvalResult {
  const model = loadModel(dir);
  try {
    if (!model.valueHead) throw new Error(`eval rm: ${dir} has no ${VALUE_HEAD}, so it is not a trained reward model (a step-2 output of \`quartet rm\` holds one)`);
    const engine = new RewardEngine(model, { model: dir, seed: 0, dropout: false, lora: null, baseLr: null });
    const n = pairs.chosen.n;
    const chosenScores = new Float32Array(n), rejectedScores = new Float32Array(n);
    for (let start = 0; start < n; start += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
      const b = rmBatch(pairs, idx, padId);
      const half = b.pairs * b.T;
      const r = engine.evalRm(
        { ids: b.ids.subarray(0, half), mask: b.mask.subarray(0, half), B: b.pairs, T: b.T },
        { ids: b.ids.subarray(half), mask: b.mask.subarray(half), B: b.pairs, T: b.T },
      );
      chosenScores.set(r.chosenScores, start);
      rejectedScores.set(r.rejectedScores, start);
    }
    let wins = 0, cSum = 0, rSum = 0;
    for (let i = 0; i < n; i++) {
      if (chosenScores[i] > rejectedScores[i]) wins++;
      cSum += chosenScores[i];
      rSum += rejectedScores[i];
    }
    return { pairs: n, accuracy: wins / n, chosenMean: cSum / n, rejectedMean: rSum / n, chosenScores, rejectedScores };
  } finally {
    model.dispose();
  }
}
