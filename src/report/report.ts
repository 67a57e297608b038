// Writes a run directory's report from its `metrics.jsonl` and `summary.json`:
//   report.html  the page a person opens (summary, charts, sample answers)
//   report.svg   the same charts on one image, for places that show images only
// Either input may be missing (a run that stopped early); what is there is shown.
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { lineChart, type ChartSpec } from './chart.js';
import { chartsFor } from './charts.js';
import { renderReport } from './html.js';
import { readMetrics, type MetricRow } from './metrics.js';
import { readSummary, type RunSummary } from './summary.js';

export interface ReportResult {
  html: string;
  svg: string;
  /** Titles of the charts drawn. */
  charts: string[];
  /** `file:line: problem` for each bad metrics line or summary field. */
  problems: string[];
}

const phaseTimes = ['time_generate', 'time_experience', 'time_train'];

/** Mean over PPO steps of the sum of the phase times, or null without them. */
export function meanStepTime(rows: readonly MetricRow[]): number | null {
  const totals = rows
    .filter((r) => r.phase === 'ppo' && phaseTimes.some((k) => typeof r.figures[k] === 'number'))
    .map((r) => phaseTimes.reduce((s, k) => s + (r.figures[k] ?? 0), 0));
  return totals.length > 0 ? totals.reduce((a, b) => a + b, 0) / totals.length : null;
}

/** All charts on one SVG image, two to a row. */
export function chartsSvg(charts: readonly ChartSpec[]): string {
  const W = 560, H = 300, cols = 2;
  const rows = Math.max(1, Math.ceil(charts.length / cols));
  const parts = charts.map((c, i) => {
    const svg = lineChart({ ...c, width: W, height: H });
    return svg.replace('<svg ', `<svg x="${(i % cols) * W}" y="${Math.floor(i / cols) * H}" `);
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${cols * W}" height="${rows * H}" viewBox="0 0 ${cols * W} ${rows * H}">`,
    `<rect width="${cols * W}" height="${rows * H}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** Reads the run directory and writes report.html and report.svg into it. */
export function writeReport(runDir: string, opts: { title?: string } = {}): ReportResult {
  const dir = resolve(runDir);
  if (!existsSync(dir)) throw new Error(`writeReport: run directory ${dir} does not exist`);
  const problems: string[] = [];
  let rows: MetricRow[] = [];
  const metricsPath = join(dir, 'metrics.jsonl');
  if (existsSync(metricsPath)) {
    const m = readMetrics(metricsPath);
    rows = m.rows;
    problems.push(...m.problems);
  } else {
    problems.push(`${metricsPath}: missing; no charts`);
  }
  let summary: RunSummary = {};
  const summaryPath = join(dir, 'summary.json');
  if (existsSync(summaryPath)) {
    const s = readSummary(summaryPath);
    summary = s.summary;
    problems.push(...s.problems);
  } else {
    problems.push(`${summaryPath}: missing; no summary table figures`);
  }

  const charts = chartsFor(rows);
  const html = join(dir, 'report.html');
  const svg = join(dir, 'report.svg');
  writeFileSync(html, renderReport({
    title: opts.title ?? 'Quartet run report',
    subtitle: `${basename(dir)} — ${dir}`,
    summary,
    charts,
    measuredStepTime: meanStepTime(rows),
    problems,
  }));
  writeFileSync(svg, chartsSvg(charts));
  return { html, svg, charts: charts.map((c) => c.title), problems };
}
