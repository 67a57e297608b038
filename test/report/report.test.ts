import t from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/util/paths.js';
import { writeReport, meanStepTime } from '../../src/report/report.js';
import { parseMetrics, seriesOf } from '../../src/report/metrics.js';
import { parseSummary } from '../../src/report/summary.js';

const fixture = join(repoRoot, 'test/fixtures/demo/report-run');

function runDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('metrics lines are parsed; bad lines and fields are named with file:line', async (t) => {
  const m = parseMetrics(readFileSync(join(fixture, 'metrics.jsonl'), 'utf8'), 'run/metrics.jsonl');
  t.equal(m.rows.length, 15, 'every good line, plus the line with one bad field');
  t.equal(m.problems.length, 3);
  t.match(m.problems[0], /^run\/metrics\.jsonl:12: not valid JSON \(.+\)$/, "JSON.parse's own message follows");
  t.same(m.problems.slice(1), [
    'run/metrics.jsonl:14: field \'kl\' must be a number or null, got "high"; skipped',
    "run/metrics.jsonl:15: field 'phase' must be one of pretrain, sft, rm, ppo, dpo, got \"warmup\"",
  ]);
  t.same(seriesOf(m.rows, 'ppo', 'kl'), [[0, 0], [1, 0.35], [2, 1.1], [4, 2.4], [5, 3.0]], 'the bad field is left out of its series');
  t.same(seriesOf(m.rows, 'ppo', 'policy_loss').at(-1), [5, null], 'null is kept as a gap');
  t.same(parseMetrics('[1]\n{"phase":"sft","step":-1}\n{"phase":"sft","step":2,"time":"20:31"}\n', 'm').problems, [
    'm:1: expected a JSON object, got an array',
    "m:2: field 'step' must be a non-negative integer, got -1",
  ]);
  t.equal(meanStepTime(m.rows)!.toFixed(4), ((1.26 + 1.22 + 1.25 + 1.30 + 1.28 + 1.31) / 6).toFixed(4));
});

t.test('summary fields of the wrong type are named', async (t) => {
  const s = parseSummary('{"rm":{"accuracy":"0.8"},"kl":3,"samples":[{"prompt":"p"}]}', 'run/summary.json');
  t.same(s.problems, [
    "run/summary.json: field 'rm.accuracy' must be a number, got \"0.8\"; skipped",
    "run/summary.json: field 'kl' must be an object; skipped",
    "run/summary.json: field 'samples' must be a list of {prompt, before, after} strings; skipped",
  ]);
  t.same(parseSummary('{', 'x.json').problems.length, 1);
});

t.test('report.html and report.svg from the fixture run', async (t) => {
  const dir = runDir(t);
  cpSync(fixture, dir, { recursive: true });
  const r = writeReport(dir);
  t.same(r.charts, [
    'Learned reward (PPO)', 'Gold score, AFINN (PPO)', 'KL to the reference (PPO)', 'PPO losses', 'Phase times per PPO step',
    'Gold per word and repetition (PPO)', 'Answer length (PPO)', 'Clip fractions (PPO)', 'Throughput (PPO)',
    'Pre-training loss (step 0)', 'SFT loss (step 1)', 'Reward-model loss (step 2)', 'Reward-model accuracy (step 2)',
    'lr (pre-training)', 'tokens_per_s (pre-training)', 'entropy (PPO)',
  ]);
  t.equal(r.problems.length, 3);
  const html = readFileSync(r.html, 'utf8');
  t.match(html, /^<!DOCTYPE html>/);
  t.notMatch(html, /<script|<link|src="http/, 'self-contained');
  t.equal((html.match(/<svg /g) ?? []).length, 16, 'one SVG per chart');
  for (const name of ['reward', 'gold', 'kl', 'policy_loss', 'value_loss', 'time_generate', 'time_experience', 'time_train']) {
    t.match(html, new RegExp(`<g class="series" data-name="${name}">\\s*<polyline`), `series ${name} is drawn`);
  }
  // the summary table: gold before/after and its change, RM accuracy, final KL, time per step
  t.match(html, /Gold score per answer \(AFINN, mean\)<\/th><td>0\.19<\/td><td>2\.25<\/td><td class="change">\+2\.06<\/td>/);
  t.match(html, /Answers with a positive gold score<\/th><td>19 %<\/td><td>66 %<\/td><td class="change">\+47 pts<\/td>/);
  t.match(html, /Reward model, held-out accuracy<\/th><td colspan="3">82 % \(trained on 4120 pairs\)/);
  t.match(html, /KL to the reference, final \(nats per answer\)<\/th><td colspan="3">3\.00</);
  t.match(html, /Wall time per PPO step<\/th><td colspan="3">1\.31 s</);
  t.match(html, /Wall time, whole run<\/th><td colspan="3">8\.4 min</);
  t.match(html, /<th>Seed<\/th><td colspan="3">1</, 'other summary fields are listed');
  t.match(html, /<th>Kl eval<\/th><td>0\.00<\/td><td>7\.80<\/td><td class="change">\+7\.80<\/td>/, 'a {before, after} field joins the before/after rows');
  t.match(html, /<th>Pretrain<\/th><td colspan="3">steps 900, final loss 4\.690, cached no</, 'an object is written out in words, not JSON');
  // samples, escaped; a gold score only where the run recorded one (the report scores nothing)
  t.match(html, /it was a great and happy day for the city\.<\/td>/);
  t.notMatch(html, /city\.<span class="gold">/, 'no gold score the run did not record');
  t.match(html, /&lt;b&gt;She&lt;\/b&gt;/, 'text is escaped');
  t.match(html, /metrics\.jsonl:12: not valid JSON/, 'problems are shown on the page');
  const svg = readFileSync(r.svg, 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="1120" height="2400"/, '16 charts, two to a row');
  t.equal((svg.match(/<svg /g) ?? []).length, 17);
});

t.test('a run with no metrics or summary still gets a report', async (t) => {
  const dir = runDir(t);
  writeFileSync(join(dir, 'metrics.jsonl'), '');
  const r = writeReport(dir);
  t.same(r.charts, []);
  t.match(r.problems[0], /summary\.json: missing/);
  const html = readFileSync(r.html, 'utf8');
  t.match(html, /The run recorded no metrics\./);
  t.match(html, /The run recorded no sample answers\./);
  t.match(html, /Wall time per PPO step<\/th><td colspan="3">—</);
  t.throws(() => writeReport(join(dir, 'nope')), /run directory .*nope does not exist/);
  writeFileSync(join(dir, 'metrics.jsonl'), 'x\n'.repeat(80));
  const broken = writeReport(dir);
  t.equal(broken.problems.length, 81, 'every bad line is returned');
  t.match(readFileSync(broken.html, 'utf8'), /<li>\.\.\. and 31 more<\/li>/, 'the page lists the first 50');
});

