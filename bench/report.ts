// Shared output of every benchmark: a table for people, and with --json one
// JSON object per measurement so figures can be tracked from run to run.
export interface Measurement {
  /** What was measured, e.g. 'gemm qkv 2048x2304x768 fwd'. */
  name: string;
  /** The figures, e.g. { gflops: 101.2, threads: 1 }. */
  figures: Record<string, number | string>;
  /** Quartet's figure over the baseline measured in the same run (higher is better), when it ran. */
  ratio?: number;
  /** What the ratio compares against (set by the Reporter): e.g. 'torch', or 'no baseline: <why>'. */
  baseline?: string;
}

export interface BenchOptions {
  json: boolean;
  /** Remaining command-line arguments for the benchmark itself. */
  args: string[];
}

export class Reporter {
  private rows: Measurement[] = [];
  private missing: string | null = null;
  /** `baseline` names what each row's ratio compares against (PyTorch, unless a bench says otherwise). */
  constructor(private readonly opts: BenchOptions, private readonly baseline = 'torch') {}

  /**
   * The baseline did not run (`why`: e.g. which Pythons were tried): from now on every row
   * says so itself, in the table's ratio column and as `baseline: 'no baseline: <why>'` in JSON.
   */
  noBaseline(why: string): void {
    this.missing = `no baseline: ${why}`;
  }

  add(m: Measurement): void {
    if (m.ratio !== undefined && Number.isFinite(m.ratio)) m = { ...m, baseline: this.baseline };
    else if (this.missing) m = { ...m, ratio: undefined, baseline: this.missing };
    else if (m.ratio !== undefined) m = { ...m, ratio: undefined };
    this.rows.push(m);
    if (this.opts.json) console.log(JSON.stringify(m));
  }

  /** Prints the table (unless --json); call once at the end. */
  finish(title: string): void {
    if (this.opts.json) return;
    const keys = [...new Set(this.rows.flatMap((r) => Object.keys(r.figures)))];
    const header = ['name', ...keys, `vs ${this.baseline}`];
    const fmt = (v: unknown) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) : v === undefined ? '' : String(v));
    const ratio = (r: Measurement) => (r.ratio !== undefined ? r.ratio.toFixed(2) + 'x' : r.baseline?.startsWith('no baseline') ? r.baseline : '-');
    const body = this.rows.map((r) => [r.name, ...keys.map((k) => fmt(r.figures[k])), ratio(r)]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
    const last = header.length - 1;
    // The ratio column is left-aligned when it holds a "no baseline: ..." sentence.
    const left = (i: number) => i === 0 || (i === last && this.missing !== null);
    const line = (cells: unknown[]) => cells.map((c, i) => (left(i) ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ').trimEnd();
    console.log(`\n${title}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    for (const b of body) console.log(line(b));
  }
}
