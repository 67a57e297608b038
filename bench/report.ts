// Shared output of every benchmark: a table for people, and with --json one
// JSON object per measurement so figures can be tracked from run to run.
export interface Measurement {
  /** What was measured, e.g. 'gemm qkv 2048x2304x768 fwd'. */
  name: string;
  /** The figures, e.g. { gflops: 101.2, threads: 1 }. */
  figures: Record<string, number | string>;
  /** Quartet's figure over the baseline measured in the same run (higher is better), when it ran. */
  ratio?: number;
  /** What the ratio compares against (set by the Reporter). */
  baseline?: string;
}

export interface BenchOptions {
  json: boolean;
  /** Remaining command-line arguments for the benchmark itself. */
  args: string[];
}

export class Reporter {
  private rows: Measurement[] = [];
  /** `baseline` names what each row's ratio compares against (PyTorch, unless a bench says otherwise). */
  constructor(private readonly opts: BenchOptions, private readonly baseline = 'torch') {}

  add(m: Measurement): void {
    if (m.ratio !== undefined) m = { ...m, baseline: this.baseline };
    this.rows.push(m);
    if (this.opts.json) console.log(JSON.stringify(m));
  }

  /** Prints the table (unless --json); call once at the end. */
  finish(title: string): void {
    if (this.opts.json) return;
    const keys = [...new Set(this.rows.flatMap((r) => Object.keys(r.figures)))];
    const header = ['name', ...keys, `vs ${this.baseline}`];
    const fmt = (v: unknown) => (typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3)) : v === undefined ? '' : String(v));
    const body = this.rows.map((r) => [r.name, ...keys.map((k) => fmt(r.figures[k])), r.ratio === undefined ? '-' : r.ratio.toFixed(2) + 'x']);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
    const line = (cells: unknown[]) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
    console.log(`\n${title}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    for (const b of body) console.log(line(b));
  }
}
