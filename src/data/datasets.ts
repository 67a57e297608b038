// The data of one step, from the config: every dataset is read (or found in
// the tokenised cache), tokenised in the worker pool, split into its sft / rm
// / ppo share by DeepSpeed-Chat's seeded permutation, blended with the other
// datasets, and assembled into the step's examples.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, StepName } from '../config/defaults.js';
import { QTokenizer } from '../models/tokenizer.js';
import { Progress } from '../util/progress.js';
import { cacheKey, readCacheEntry, sha256, writeCacheEntry } from './cache.js';
import { ppoPrompts, rmPairs, sftExamples, type AssembleStats, type Limits, type PpoPrompts, type RmPairs, type SftExamples } from './examples.js';
import { checkTemplate, formatRow } from './format.js';
import { TokenizerPool } from './pool.js';
import { BadRows } from './rows.js';
import { listDatasetFiles, parseDataFile, type SourceFile } from './sources.js';
import { parseSplit, shuffleIndex, splitIndex } from './split.js';
import { concatTables, selectRows, tokenizeRows, type TokenTable } from './token-table.js';

export type DataSettings = Config['data'];

export interface DataContext {
  data: DataSettings;
  seed: number;
  /** Folder with tokenizer.json (+ tokenizer_config.json): the actor model's. */
  tokenizerDir: string;
  /** Where tokenised files are cached. */
  cacheDir: string;
  log?: (line: string) => void;
}

/** The context of a run: the cache lives in data.cacheDir, or <outputDir>/data-cache. */
export function dataContext(config: Config, tokenizerDir: string, log?: (line: string) => void): DataContext {
  return { data: config.data, seed: config.seed, tokenizerDir, cacheDir: config.data.cacheDir ?? join(config.outputDir, 'data-cache'), log };
}

export interface DatasetReport {
  path: string;
  /** Rows in the dataset's train and test parts before the step split. */
  trainRows: number;
  testRows: number;
  /** True when the test part was held out of train (data.evalFraction). */
  heldOut: boolean;
  filesFromCache: number;
  filesTokenised: number;
}

export interface DataReport {
  datasets: DatasetReport[];
  /** Messages of skipped bad rows (data.onBadRow 'skip'), each naming file and line. */
  skipped: string[];
  stats: AssembleStats;
}

/** Files with fewer rows are tokenised on the main thread. */
export const POOL_MIN_ROWS = 2000;

const stepPart: Record<StepName, number> = { sft: 0, rm: 1, ppo: 2, dpo: 1 };

/** Hash of the tokenizer files: part of every cache key. */
export function tokenizerHash(dir: string): string {
  const files = ['tokenizer.json', 'tokenizer_config.json'].map((f) => join(dir, f)).filter(existsSync);
  if (files.length === 0) throw new Error(`data: tokenizer folder '${dir}' has no tokenizer.json`);
  return sha256(files.map((f) => sha256(readFileSync(f))).join(','));
}

class Tokenising {
  private pool: TokenizerPool | null = null;
  private local: QTokenizer | null = null;
  constructor(private readonly ctx: DataContext, private readonly tokHash: string) {}

  /** One data file's tokenised rows, from the cache or freshly made (and cached). */
  async file(f: SourceFile, skipped: string[]): Promise<{ table: TokenTable; cached: boolean }> {
    const { data } = this.ctx;
    const bytes = readFileSync(f.path);
    const key = cacheKey({
      path: f.path, file: sha256(bytes), tokenizer: this.tokHash, template: data.promptTemplate,
      eot: data.endOfConversationToken, onBadRow: data.onBadRow,
    });
    const hit = readCacheEntry(this.ctx.cacheDir, key);
    if (hit) {
      skipped.push(...hit.skipped);
      return { table: hit.table, cached: true };
    }
    const bad = new BadRows(data.onBadRow);
    const rows = await parseDataFile(f.path, bytes, bad);
    const formatted = rows.map((r) => formatRow(r, data));
    let table: TokenTable;
    if (formatted.length < POOL_MIN_ROWS) {
      // Starting worker threads costs more than tokenising a small file here.
      this.local ??= QTokenizer.load(this.ctx.tokenizerDir);
      table = tokenizeRows(this.local, formatted);
    } else {
      this.pool ??= new TokenizerPool(this.ctx.tokenizerDir, data.workers);
      const bar = new Progress({ total: formatted.length, label: `tokenising ${f.path}`, unit: 'rows' });
      table = await this.pool.tokenize(formatted, (n) => bar.tick(n));
      bar.finish();
    }
    const messages = bad.skipped.map((e) => e.message);
    writeCacheEntry(this.ctx.cacheDir, key, { table, lines: Int32Array.from(rows, (r) => r.origin.line), skipped: messages });
    skipped.push(...messages);
    return { table, cached: false };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

/** The tokenised train and eval rows of `step`, blended over all datasets. */
export async function loadStepRows(ctx: DataContext, step: StepName): Promise<{ train: TokenTable; eval: TokenTable; report: DataReport }> {
  const { data, seed } = ctx;
  if (data.paths.length === 0) throw new Error('data.paths: no dataset given');
  checkTemplate(data.promptTemplate);
  const shares = parseSplit(data.split);
  if (shares.length !== 3) throw new Error(`data.split: expected three shares (sft, rm, ppo), got '${data.split}'`);
  const tok = new Tokenising(ctx, tokenizerHash(ctx.tokenizerDir));
  const report: DataReport = { datasets: [], skipped: [], stats: { promptsTruncated: 0, answersTruncated: 0, withoutRejected: 0 } };
  const trainParts: TokenTable[] = [];
  const evalParts: TokenTable[] = [];
  try {
    for (const path of data.paths) {
      const files = listDatasetFiles(path);
      const bySplit: Record<'train' | 'test', TokenTable[]> = { train: [], test: [] };
      let fromCache = 0;
      for (const f of files) {
        const { table, cached } = await tok.file(f, report.skipped);
        bySplit[f.split].push(table);
        if (cached) fromCache++;
      }
      let train = concatTables(bySplit.train);
      let test = concatTables(bySplit.test);
      const heldOut = bySplit.test.length === 0;
      if (heldOut) {
        // DeepSpeed-Chat holds out a seeded share of a dataset that has no test split ('9,1').
        const all = train;
        const holdout = [1 - data.evalFraction, data.evalFraction];
        train = selectRows(all, splitIndex(seed, holdout, 0, all.n));
        test = selectRows(all, splitIndex(seed, holdout, 1, all.n));
      }
      report.datasets.push({ path, trainRows: train.n, testRows: test.n, heldOut, filesFromCache: fromCache, filesTokenised: files.length - fromCache });
      trainParts.push(selectRows(train, splitIndex(seed, shares, stepPart[step], train.n)));
      evalParts.push(selectRows(test, splitIndex(seed, shares, stepPart[step], test.n)));
    }
  } finally {
    await tok.close();
  }
  const blend = (parts: TokenTable[]) => {
    const all = concatTables(parts);
    return parts.length > 1 ? selectRows(all, Array.from(shuffleIndex(seed, all.n))) : all;
  };
  const out = { train: blend(trainParts), eval: blend(evalParts), report };
  ctx.log?.(`data (${step}): ${out.train.n} train / ${out.eval.n} eval rows from ${data.paths.length} dataset(s)` +
    (report.skipped.length ? `; skipped ${report.skipped.length} bad row(s), first: ${report.skipped[0]}` : ''));
  return out;
}

function limitsOf(ctx: DataContext, tok: QTokenizer): Limits {
  return { maxPromptLen: ctx.data.maxPromptLen, maxAnswerLen: ctx.data.maxAnswerLen, specialPrefix: tok.encode('', { addSpecialTokens: true }) };
}

function addStats(into: AssembleStats, s: AssembleStats): void {
  into.promptsTruncated += s.promptsTruncated;
  into.answersTruncated += s.answersTruncated;
  into.withoutRejected += s.withoutRejected;
}

export interface StepData<E> {
  train: E;
  eval: E;
  report: DataReport;
  /** The pad id of the tokenizer, for batching. */
  padId: number;
  /** The tokenizer's end token, which ends a PPO answer (null: none); set by the loaders. */
  eosId?: number | null;
}

async function assemble<E>(ctx: DataContext, step: StepName, make: (t: TokenTable, lim: Limits) => { examples: E; stats: AssembleStats }): Promise<StepData<E>> {
  const tok = QTokenizer.load(ctx.tokenizerDir);
  const rows = await loadStepRows(ctx, step);
  const lim = limitsOf(ctx, tok);
  const train = make(rows.train, lim);
  const evalSet = make(rows.eval, lim);
  addStats(rows.report.stats, train.stats);
  addStats(rows.report.stats, evalSet.stats);
  return { train: train.examples, eval: evalSet.examples, report: rows.report, padId: tok.padId, eosId: tok.eosId };
}

export function loadSftData(ctx: DataContext): Promise<StepData<SftExamples>> {
  return assemble(ctx, 'sft', sftExamples);
}
export function loadRmData(ctx: DataContext): Promise<StepData<RmPairs>> {
  return assemble(ctx, 'rm', rmPairs);
}
export function loadPpoPrompts(ctx: DataContext): Promise<StepData<PpoPrompts>> {
  return assemble(ctx, 'ppo', ppoPrompts);
}
