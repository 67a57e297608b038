// The tokenising worker pool: rows are cut into chunks that piscina's worker
// threads tokenise in parallel, and the chunks' tables are joined in order, so
// the result is the same as tokenising on the main thread.
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { distPath } from '../util/paths.js';
import type { FormattedRow } from './format.js';
import { concatTables, type TokenTable } from './token-table.js';
import type { TokenizeTask } from './tokenize-worker.js';

/** Rows per task by default: large enough to amortise the message, small enough to spread over workers. */
const CHUNK = 512;

export class TokenizerPool {
  private readonly pool: Piscina<TokenizeTask, TokenTable>;

  /** threads 0 = one per CPU core, at most 4. */
  constructor(readonly tokenizerDir: string, threads = 0, private readonly chunk = CHUNK) {
    const n = threads > 0 ? threads : Math.min(4, availableParallelism());
    this.pool = new Piscina({ filename: distPath('src/data/tokenize-worker.js'), minThreads: 1, maxThreads: n, idleTimeout: 5_000 });
  }

  get threads(): number {
    return this.pool.maxThreads;
  }

  /** Tokenises rows in chunks across the workers; onChunk(rows) is called as each chunk finishes. */
  async tokenize(rows: readonly FormattedRow[], onChunk?: (rows: number) => void): Promise<TokenTable> {
    const tasks: Promise<TokenTable>[] = [];
    for (let i = 0; i < rows.length; i += this.chunk) {
      const chunk = rows.slice(i, i + this.chunk);
      tasks.push(this.pool.run({ tokenizerDir: this.tokenizerDir, rows: chunk }).then((table) => {
        onChunk?.(chunk.length);
        return table;
      }));
    }
    if (tasks.length === 0) return concatTables([]);
    return concatTables(await Promise.all(tasks));
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
