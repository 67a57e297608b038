// The short summary a run prints at its end: the figures of summary.json as
// aligned plain text, and a few sample answers before and after PPO.
import type { RunSummary } from './summary.js';

const num = (v: unknown, digits = 2): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-');
const pct = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '-');

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? flat.slice(0, width - 3) + '...' : flat;
}

/** Plain-text summary for the terminal; `samples` sample answers at most. */
export function summaryText(s: RunSummary, opts: { samples?: number; width?: number } = {}): string {
  const width = opts.width ?? 100;
  const before = (s.gold?.before ?? {}) as unknown as Record<string, unknown>;
  const after = (s.gold?.after ?? {}) as unknown as Record<string, unknown>;
  const rows: [string, string, string][] = [
    ['gold score per answer (AFINN)', num(before.meanScore), num(after.meanScore)],
    ['answers with a positive gold score', pct(before.sharePositive), pct(after.sharePositive)],
    ['gold score per word', num(before.meanPerWord, 3), num(after.meanPerWord, 3)],
    ['repeated word bigrams', num(before.meanRepetition, 3), num(after.meanRepetition, 3)],
    ['answer length (words)', num(before.meanWords, 1), num(after.meanWords, 1)],
    ['learned reward', num(s.reward?.before), num(s.reward?.after)],
  ];
  const label = Math.max(...rows.map((r) => r[0].length));
  const lines = [
    `${''.padEnd(label)}  ${'before'.padStart(8)}  ${'after'.padStart(8)}`,
    ...rows.map(([k, a, b]) => `${k.padEnd(label)}  ${a.padStart(8)}  ${b.padStart(8)}`),
    `reward model held-out accuracy ${pct(s.rm?.accuracy)}, final KL ${num(s.kl?.final)} nats, ` +
      `${num(s.time?.per_step_s)} s per PPO step, ${num(typeof s.time?.total_s === 'number' ? s.time.total_s / 60 : null, 1)} min in all`,
  ];
  const samples = (s.samples ?? []).slice(0, opts.samples ?? 3);
  for (const x of samples) {
    // A gold score shows only where the run recorded one.
    const gb = x.gold_before ?? '-';
    const ga = x.gold_after ?? '-';
    lines.push('', oneLine(x.prompt, width), `  before (gold ${gb}): ${oneLine(x.before, width - 20)}`, `  after  (gold ${ga}): ${oneLine(x.after, width - 20)}`);
  }
  return lines.join('\n');
}
