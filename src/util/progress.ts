// A progress bar for long phases (tokenising, SFT/RM epochs, PPO steps). On a
// terminal it redraws one line in place with rate and ETA; in a log file (not
// a TTY) it writes a plain line every few percent, so logs stay readable.
// Lines printed while a bar is drawn go through printAbove: the bar is wiped,
// the line printed, the bar drawn again below it (as cli-progress does), so
// a log line and the bar never share a line of the terminal.

type Stream = { write(s: string): unknown; isTTY?: boolean };

/** The bar drawn on a terminal now, if any: the one printAbove keeps below the log. */
let drawn: Progress | null = null;

/** Prints a whole line (default: on stdout) above the progress bar that is drawn, if one is. */
export function printAbove(line: string, stream: Stream = process.stdout): void {
  const bar = drawn;
  bar?.wipe();
  stream.write(`${line}\n`);
  bar?.redraw();
}

export interface ProgressOptions {
  /** Work units in the phase (examples, steps, ...). */
  total: number;
  label: string;
  /** Unit name for the rate, e.g. 'rows' -> '120 rows/s'. */
  unit?: string;
  /** Defaults to process.stderr. */
  stream?: Stream;
  /** Not a TTY: write a line each time this many more percent are done. */
  everyPercent?: number;
  /** TTY: redraw at most this often. */
  redrawMs?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, '0'), ss = String(sec).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '?';
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond >= 10 ? perSecond.toFixed(1) : perSecond.toFixed(2);
}

export class Progress {
  private done = 0;
  private readonly start: number;
  private lastDraw = -Infinity;
  private lastPercentLine = 0;
  private finished = false;
  private readonly stream: Stream;
  /** The bar as last drawn on a terminal ('' before the first draw). */
  private shown = '';
  private readonly now: () => number;
  private readonly tty: boolean;

  constructor(private readonly o: ProgressOptions) {
    if (!(o.total >= 0)) throw new Error(`Progress '${o.label}': total must be >= 0, got ${o.total}`);
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.now = o.now ?? (() => performance.now());
    this.start = this.now();
  }

  /** Adds n finished units; `note` (e.g. the current loss) is shown after the rate. */
  tick(n = 1, note = ''): void {
    this.update(this.done + n, note);
  }

  /** Sets the finished units. */
  update(done: number, note = ''): void {
    if (this.finished) return;
    this.done = Math.min(done, this.o.total);
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= (this.o.redrawMs ?? 100) || this.done === this.o.total) {
        this.lastDraw = t;
        this.shown = this.line(t, note, true);
        this.stream.write(`\r\x1b[2K${this.shown}`);
        drawn = this;
      }
    } else {
      const step = this.o.everyPercent ?? 10;
      const percent = this.o.total ? (100 * this.done) / this.o.total : 100;
      if (percent >= this.lastPercentLine + step && this.done < this.o.total) {
        this.lastPercentLine = Math.floor(percent / step) * step;
        this.stream.write(this.line(t, note, false) + '\n');
      }
    }
    if (this.done >= this.o.total) this.finish(note);
  }

  /** Ends the bar (also when the phase stopped early): a final line with the elapsed time. */
  finish(note = ''): void {
    if (this.finished) return;
    this.finished = true;
    if (drawn === this) drawn = null;
    const t = this.now();
    const elapsed = (t - this.start) / 1000;
    const line = `${this.o.label}: ${this.done}/${this.o.total} in ${formatDuration(elapsed)}` +
      ` (${formatRate(this.done / elapsed)} ${this.o.unit ?? 'it'}/s)${note ? ` ${note}` : ''}`;
    this.stream.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  /** Clears the drawn bar's line (printAbove, before its line). */
  wipe(): void {
    if (this.shown) this.stream.write('\r\x1b[2K');
  }

  /** Draws the bar again as it was (printAbove, after its line). */
  redraw(): void {
    if (this.shown && !this.finished) this.stream.write(this.shown);
  }

  private line(t: number, note: string, bar: boolean): string {
    const { total, label } = this.o;
    const elapsed = (t - this.start) / 1000;
    const rate = this.done / elapsed;
    const eta = rate > 0 ? (total - this.done) / rate : Infinity;
    const percent = total ? Math.floor((100 * this.done) / total) : 100;
    const width = 24;
    const filled = total ? Math.round((width * this.done) / total) : width;
    const drawn = bar ? ` [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]` : ':';
    return `${label}${drawn} ${percent}% ${this.done}/${total} ${formatRate(rate)} ${this.o.unit ?? 'it'}/s ETA ${formatDuration(eta)}${note ? ` ${note}` : ''}`;
  }
}
