// The embedded demo end to end with small settings (ciDemoOptions and the
// step sizes below): corpus, tokenizer, pre-training, SFT, AFINN-labelled
// pairs, reward model, PPO and the before/after evaluation, all through real
// role processes. The margins were chosen from repeated runs with different
// seeds (see docs/demo.md, "How the CI test was calibrated").
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConfigFile, loadConfig, readConfigFile } from '../../src/config/load.js';
import { ciDemoOptions, ciStepFlags } from './ci-options.js';
import { runDemoWith } from '../../src/demo/run.js';
import { readSummary } from '../../src/report/summary.js';

// Calibration (these settings, on the loaded 2-core development machine, 6 min
// each): gold before -> after and RM accuracy were, by seed,
//   1: -0.05 -> 0.41, 0.769    2: 0.22 -> 0.67, 0.749
//   3:  0.03 -> 0.45, 0.744    4: 0.02 -> 1.00, 0.856
// The rise margin is about half of the smallest rise (0.42); without PPO's
// effect the difference is 0 within about +-0.2 on 64 prompts.
/** Gold score (mean AFINN per answer) gained by PPO. */
const MIN_GOLD_RISE = 0.2;
/** Held-out pairwise accuracy of the reward model: chance is 0.5, and with ~350 held-out pairs its spread is under 0.03. */
const MIN_RM_ACCURACY = 0.65;

t.test('the demo trains through all steps and PPO raises the gold score', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quartet-demo-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = findConfigFile('demo');
  const { config } = loadConfig([...ciStepFlags, `--output-dir=${join(dir, 'run')}`, '--seed=1'], { source: file, values: readConfigFile(file) });
  const lines: string[] = [];
  const r = await runDemoWith({ config, demo: ciDemoOptions, cacheDir: join(dir, 'cache'), log: (l) => lines.push(l), progress: false });

  const s = r.summary;
  const before = s.gold!.before!.meanScore, after = s.gold!.after!.meanScore;
  t.comment(`gold ${before.toFixed(3)} -> ${after.toFixed(3)}, rm accuracy ${s.rm?.accuracy?.toFixed(3)}, reward ${s.reward?.before?.toFixed(3)} -> ${s.reward?.after?.toFixed(3)}, kl ${s.kl?.final?.toFixed(3)}, ${s.time?.total_s?.toFixed(0)} s`);
  t.ok(after - before >= MIN_GOLD_RISE, `gold score rises by at least ${MIN_GOLD_RISE} (${before.toFixed(3)} -> ${after.toFixed(3)})`);
  t.ok(s.rm!.accuracy! >= MIN_RM_ACCURACY, `reward-model accuracy ${s.rm!.accuracy!.toFixed(3)} >= ${MIN_RM_ACCURACY}`);
  t.ok(s.reward!.after! > s.reward!.before!, 'the learned reward rises too');
  t.ok(s.kl!.final! > 0, 'the policy moved away from the reference');
  t.equal(s.gold!.before!.count, ciDemoOptions.data.evalPrompts, 'every evaluation prompt answered');
  t.equal(s.samples!.length, ciDemoOptions.evaluate.samples);

  // The files a user opens, and the final policy as a normal model folder.
  const onDisk = readSummary(join(r.runDir, 'summary.json'));
  t.same(onDisk.problems, [], 'summary.json parses without problems');
  t.equal(onDisk.summary.gold?.after?.meanScore, after);
  const html = readFileSync(join(r.runDir, 'report.html'), 'utf8');
  t.match(html, /Gold score/, 'report.html charts the gold score');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) t.ok(existsSync(join(r.actorDir, f)), `actor/${f}`);
  const metrics = readFileSync(join(r.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { phase: string });
  for (const phase of ['pretrain', 'sft', 'rm', 'ppo']) t.ok(metrics.some((m) => m.phase === phase), `metrics.jsonl has ${phase} rows`);
  t.ok(lines.some((l) => l.includes('preference pairs')), 'the pairs step reports its count');
});
