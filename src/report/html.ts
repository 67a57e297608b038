// The report page: one self-contained HTML file (inline CSS and SVG, no
// scripts, nothing fetched) with the summary table, the charts, sample answers
// before and after PPO, and any problems met while reading the run.
import { escapeXml as esc, lineChart, type ChartSpec } from './chart.js';
import type { RunSummary } from './summary.js';

export interface ReportInput {
  title: string;
  /** Shown under the title, e.g. the run directory. */
  subtitle: string;
  summary: RunSummary;
  charts: ChartSpec[];
  /** Mean seconds per PPO step from the metrics, used when the summary has none. */
  measuredStepTime: number | null;
  problems: string[];
}

const num = (v: unknown, digits = 2): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—');
const pct = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(0)} %` : '—');
function change(a: unknown, b: unknown, digits = 2): string {
  if (typeof a !== 'number' || typeof b !== 'number' || !Number.isFinite(a) || !Number.isFinite(b)) return '—';
  const d = b - a;
  return (d > 0 ? '+' : d < 0 ? '−' : '') + Math.abs(d).toFixed(digits);
}
/** Change of a share, in percentage points. */
function changePoints(a: unknown, b: unknown): string {
  const c = change(typeof a === 'number' ? a * 100 : null, typeof b === 'number' ? b * 100 : null, 0);
  return c === '—' ? c : `${c} pts`;
}
function seconds(v: unknown): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  if (v >= 120) return `${(v / 60).toFixed(1)} min`;
  return v >= 10 ? `${v.toFixed(1)} s` : `${v.toFixed(2)} s`;
}

/** 'rm_eval_pairs' -> 'Rm eval pairs'. */
function words(key: string): string {
  const w = key.replace(/_/g, ' ');
  return w.charAt(0).toUpperCase() + w.slice(1);
}

/** A summary value for a reader: numbers rounded, booleans as yes/no, objects as 'key value' pairs. */
function inWords(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Number.isFinite(v) ? v.toPrecision(4) : '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(inWords).join(', ');
  if (v && typeof v === 'object') return Object.entries(v).map(([k, x]) => `${k.replace(/_/g, ' ')} ${inWords(x)}`).join(', ');
  return String(v);
}

function summaryTable(s: RunSummary, measuredStepTime: number | null): string {
  const before = (s.gold?.before ?? {}) as unknown as Record<string, unknown>;
  const after = (s.gold?.after ?? {}) as unknown as Record<string, unknown>;
  const rows: [string, string, string, string][] = [
    ['Gold score per answer (AFINN, mean)', num(before.meanScore), num(after.meanScore), change(before.meanScore, after.meanScore)],
    ['Answers with a positive gold score', pct(before.sharePositive), pct(after.sharePositive), changePoints(before.sharePositive, after.sharePositive)],
    ['Gold score per word', num(before.meanPerWord, 3), num(after.meanPerWord, 3), change(before.meanPerWord, after.meanPerWord, 3)],
    ['Repeated word bigrams (share)', num(before.meanRepetition, 3), num(after.meanRepetition, 3), change(before.meanRepetition, after.meanRepetition, 3)],
    ['Answer length (words)', num(before.meanWords, 1), num(after.meanWords, 1), change(before.meanWords, after.meanWords, 1)],
    ['Learned reward (mean)', num(s.reward?.before), num(s.reward?.after), change(s.reward?.before, s.reward?.after)],
  ];
  const single: [string, string][] = [
    ['Reward model, held-out accuracy', pct(s.rm?.accuracy) + (typeof s.rm?.pairs === 'number' ? ` (trained on ${s.rm.pairs} pairs)` : '')],
    ['KL to the reference, final (nats per answer)', num(s.kl?.final)],
    ['Wall time per PPO step', typeof s.time?.per_step_s === 'number' ? seconds(s.time.per_step_s) : measuredStepTime !== null ? `${seconds(measuredStepTime)} (sum of phase times in metrics)` : '—'],
    ['Wall time, whole run', seconds(s.time?.total_s)],
  ];
  for (const [phase, t] of Object.entries(s.time?.phases_s ?? {})) single.push([`Wall time, ${phase}`, seconds(t)]);
  const known = new Set(['gold', 'reward', 'rm', 'kl', 'time', 'samples']);
  // Other fields (a run's own extras, e.g. the demo's kl_eval or pretrain): a {before, after} pair joins the
  // before/after rows, anything else is written out in words rather than as JSON.
  for (const [k, v] of Object.entries(s)) {
    if (known.has(k) || v === undefined) continue;
    const pair = v as { before?: unknown; after?: unknown };
    if (typeof v === 'object' && v !== null && Object.keys(v).length === 2 && typeof pair.before === 'number' && typeof pair.after === 'number') {
      rows.push([words(k), num(pair.before), num(pair.after), change(pair.before, pair.after)]);
      continue;
    }
    const text = inWords(v);
    single.push([words(k), text.length > 160 ? text.slice(0, 157) + '...' : text]);
  }
  return [
    '<table class="summary">',
    '<thead><tr><th></th><th>before PPO</th><th>after PPO</th><th>change</th></tr></thead><tbody>',
    ...rows.map(([k, a, b, c]) => `<tr><th>${esc(k)}</th><td>${a}</td><td>${b}</td><td class="change">${c}</td></tr>`),
    ...single.map(([k, v]) => `<tr><th>${esc(k)}</th><td colspan="3">${esc(v)}</td></tr>`),
    '</tbody></table>',
  ].join('\n');
}

function samplesTable(s: RunSummary): string {
  const samples = s.samples ?? [];
  if (samples.length === 0) return '<p class="none">The run recorded no sample answers.</p>';
  // A gold score shows only where the run recorded one.
  const gold = (given: number | undefined) => (typeof given === 'number' ? `<span class="gold">gold ${given}</span>` : '');
  const rows = samples.map((x) => {
    return `<tr><td class="prompt">${esc(x.prompt)}</td><td>${esc(x.before)}${gold(x.gold_before)}</td><td>${esc(x.after)}${gold(x.gold_after)}</td></tr>`;
  });
  return ['<table class="samples">', '<thead><tr><th>prompt</th><th>before PPO</th><th>after PPO</th></tr></thead><tbody>', ...rows, '</tbody></table>'].join('\n');
}

const css = `
body { font-family: Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; padding: 0 12px; }
h1 { margin-bottom: 2px; } .sub { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; }
.summary th, .summary td { padding: 5px 12px; border-bottom: 1px solid #eee; text-align: right; }
.summary th:first-child { text-align: left; font-weight: normal; }
.summary thead th { font-weight: bold; }
.summary td[colspan] { text-align: left; }
.change { font-weight: bold; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 12px; }
.charts svg { width: 100%; height: auto; border: 1px solid #eee; }
.samples { width: 100%; table-layout: fixed; font-size: 14px; }
.samples th, .samples td { border: 1px solid #ddd; padding: 6px 8px; vertical-align: top; text-align: left; }
.samples .prompt { color: #555; }
.gold { display: block; color: #888; font-size: 12px; margin-top: 2px; }
.problems { background: #fff4e5; border: 1px solid #f0b060; padding: 8px 16px; }
.problems li { font-family: monospace; }
.none { color: #888; }
.note { color: #555; max-width: 820px; font-size: 14px; line-height: 1.4; }
`;

/** A broken metrics file can have a problem on every line; the page lists the first ones. */
const maxProblems = 50;

/** The whole page as HTML text. */
export function renderReport(input: ReportInput): string {
  const problems = input.problems.length === 0 ? '' : [
    '<div class="problems"><p><b>Problems met while reading the run</b> (these lines or fields were skipped):</p><ul>',
    ...input.problems.slice(0, maxProblems).map((p) => `<li>${esc(p)}</li>`),
    input.problems.length > maxProblems ? `<li>... and ${input.problems.length - maxProblems} more</li>` : '',
    '</ul></div>',
  ].join('\n');
  const charts = input.charts.length === 0
    ? '<p class="none">The run recorded no metrics.</p>'
    : `<div class="charts">\n${input.charts.map((c) => `<figure style="margin:0">${lineChart(c)}</figure>`).join('\n')}\n</div>`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(input.title)}</title>`,
    `<style>${css}</style></head><body>`,
    `<h1>${esc(input.title)}</h1>`,
    `<p class="sub">${esc(input.subtitle)}</p>`,
    problems,
    '<h2>Summary</h2>',
    summaryTable(input.summary, input.measuredStepTime),
    `<p class="note">The gold score is AFINN-165 sentiment (the <code>sentiment</code> package), a judge the policy never sees:
    PPO optimises the learned reward model, so a rising gold score shows that what the reward model learned carries over.
    AFINN sums word scores, so watch the per-word score, answer length and repetition beside it: a gold score that rises
    through longer or repetitive answers is the policy gaming the scorer, and a growing KL means it is drifting from the SFT model.</p>`,
    '<h2>Charts</h2>',
    charts,
    '<h2>Sample answers to held-out prompts</h2>',
    samplesTable(input.summary),
    '</body></html>',
    '',
  ].join('\n');
}
