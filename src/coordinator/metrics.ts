// The run's metrics.jsonl writer: one JSON object per line,
// {"phase", "step", "time", ...figures}, as src/report/metrics.ts reads it.
// Lines are appended synchronously, so a killed run keeps every finished step.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Phase } from '../report/metrics.js';
import { makeDirs, onDisk } from '../util/disk.js';

export type Figures = Record<string, number | null>;

export interface MetricsSink {
  write(phase: Phase, step: number, figures: Figures): void;
}

export class MetricsWriter implements MetricsSink {
  constructor(readonly path: string) {
    makeDirs(dirname(path));
  }

  write(phase: Phase, step: number, figures: Figures): void {
    const clean: Figures = {};
    // JSON has no NaN or Infinity: a diverged figure is recorded as null ("not measured") rather than torn.
    for (const [k, v] of Object.entries(figures)) clean[k] = v === null || Number.isFinite(v) ? v : null;
    const line = JSON.stringify({ phase, step, time: new Date().toISOString(), ...clean }) + '\n';
    onDisk('append to', this.path, () => appendFileSync(this.path, line));
  }

  /**
   * Drops the lines of `phase` written after step `step` (and any torn line):
   * a resumed run repeats those steps from its checkpoint and writes them again.
   */
  truncateAfter(phase: Phase, step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, 'utf8').split('\n').filter((line) => {
      if (!line.trim()) return false;
      try {
        const row = JSON.parse(line) as { phase?: string; step?: number };
        return !(row.phase === phase && typeof row.step === 'number' && row.step > step);
      } catch {
        return false;
      }
    });
    writeFileSync(this.path, kept.map((l) => l + '\n').join(''));
  }
}

/** Mean of numbers, or null for none. */
export function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** A compact one-line view of figures for the console: `loss 2.314  lr 1.0e-3`. */
export function formatFigures(figures: Figures, keys?: readonly string[]): string {
  return (keys ?? Object.keys(figures))
    .filter((k) => typeof figures[k] === 'number')
    .map((k) => {
      const v = figures[k] as number;
      const s = Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e-2 && Math.abs(v) < 1e4 ? v.toFixed(3) : v.toExponential(2);
      return `${k} ${s}`;
    })
    .join('  ');
}
