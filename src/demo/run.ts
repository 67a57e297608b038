// The embedded demo (ARCHITECTURE.md §6, issue 6): `quartet train` with no
// model and no data. On the machine it runs on, CPU only:
//   data     the Brown corpus split, a byte-level BPE and the prompt sets (cached)
//   step 0   a small GPT pre-trained from scratch on the corpus (cached)
//   step 1   SFT on "Human: Continue this: ... Assistant: ..." pairs
//   step 2   preference pairs sampled from the SFT actor, labelled by AFINN,
//            and a reward model trained on them
//   step 3   PPO against the learned reward, the four roles as processes
//   eval     the SFT and PPO policies answer held-out prompts: gold score,
//            learned reward, KL to the reference, repetition
// Steps 1-3 run through the pipeline's own drivers (src/coordinator), each
// with the demo's data files as its dataset. The run directory gets the usual
// layout (the final policy in actor/, for `npx quartet chat --model <run>/actor`)
// plus summary.json and report.html.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Config, StepName } from '../config/defaults.js';
import { findConfigFile, loadConfig, readConfigFile } from '../config/load.js';
import { MetricsWriter, type Figures, type MetricsSink } from '../coordinator/metrics.js';
import { train } from '../coordinator/pipeline.js';
import type { ExperienceView } from '../coordinator/ppo.js';
import { runPaths } from '../coordinator/run-dir.js';
import { QTokenizer } from '../models/tokenizer.js';
import type { Phase } from '../report/metrics.js';
import { writeReport } from '../report/report.js';
import { writeSummary, type RunSummary } from '../report/summary.js';
import { summaryText } from '../report/text.js';
import { repoRoot } from '../util/paths.js';
import { printAbove } from '../util/progress.js';
import { sha256 } from '../data/cache.js';
import { prepareDemoData, demoDataDefaults } from './data.js';
import { evaluateBeforeAfter } from './evaluate.js';
import { goldSummary, summariseAnswers } from './gold.js';
import { checkDemoOptions, demoDefaults, type DemoOptions } from './options.js';
import { pretrainBase } from './pretrain.js';
import { useAllCores } from './placement.js';
import { makePreferencePairs } from './rm-data.js';
import { decodeAnswers } from './sample.js';
import { ensureWritableDir } from '../util/disk.js';

export interface DemoRunOptions {
  /** The resolved run config (configs/demo.json under the user's flags). */
  config: Config;
  demo?: DemoOptions;
  /** Where the data folder and the pre-trained base are cached; default <repo>/runs/demo-cache. */
  cacheDir?: string;
  log?: (line: string) => void;
  /** Progress bars on stderr (default true). */
  progress?: boolean;
  /** The config keys the user set (loadConfig's `explicit`); the others may be fitted to the model. */
  explicit?: ReadonlySet<string>;
}

export interface DemoResult {
  runDir: string;
  summary: RunSummary;
  /** The final policy: a Hugging Face folder with tokenizer files. */
  actorDir: string;
}

/** The demo's run directory: `outputDir`, or the next free `outputDir-N` when it already holds a run (unless resuming). */
export function freeRunDir(outputDir: string, resume: boolean): string {
  const taken = (d: string) => existsSync(d) && readdirSync(d).length > 0;
  if (resume || !taken(outputDir)) return outputDir;
  for (let n = 2; ; n++) if (!taken(`${outputDir}-${n}`)) return `${outputDir}-${n}`;
}

/** The config of one pipeline step of the demo: its dataset file as the step's whole share. */
function stepConfig(base: Config, step: StepName, dataPath: string, resume: boolean): Config {
  const cfg: Config = structuredClone(base);
  cfg.steps = [step];
  cfg.resume = resume;
  cfg.data.paths = [dataPath];
  cfg.data.split = step === 'sft' ? '1,0,0' : step === 'rm' ? '0,1,0' : '0,0,1';
  // SFT and RM each train one role alone: give it both cores (1.6x on this
  // model) rather than the core it shares with another role in PPO.
  if (step === 'sft') useAllCores(cfg, 'actor');
  if (step === 'rm') useAllCores(cfg, 'reward');
  return cfg;
}

/** Records metrics and remembers the last figures of each phase. */
class RecordingSink implements MetricsSink {
  readonly last = new Map<Phase, Figures>();
  constructor(private readonly inner: MetricsSink) {}
  write(phase: Phase, step: number, figures: Figures): void {
    this.inner.write(phase, step, figures);
    this.last.set(phase, { ...this.last.get(phase), ...figures });
  }
}

/** Runs the whole demo; resolves when summary.json and report.html are written. */
export async function runDemoWith(opts: DemoRunOptions): Promise<DemoResult> {
  const started = performance.now();
  const log = opts.log ?? (() => {});
  const progress = opts.progress ?? true;
  const demo = opts.demo ?? demoDefaults;
  checkDemoOptions(demo);
  const config: Config = structuredClone(opts.config);
  config.outputDir = freeRunDir(resolve(config.outputDir), config.resume);
  ensureWritableDir(config.outputDir, 'outputDir');
  const paths = runPaths(config.outputDir);
  const phases: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      phases[name] = (performance.now() - t0) / 1000;
    }
  };
  log(`demo: run directory ${paths.root}`);

  const dataOptions = { ...demoDataDefaults, ...demo.data };
  const cacheRoot = resolve(opts.cacheDir ?? join(repoRoot, 'runs', 'demo-cache'));
  const dataDir = join(cacheRoot, `data-${sha256(JSON.stringify(dataOptions)).slice(0, 10)}`);
  const data = await timed('data', async () => prepareDemoData(dataDir, dataOptions, log));

  const writer = new MetricsWriter(paths.metrics);
  // A resumed run writes the pre-training lines again (from the cache).
  if (config.resume) writer.truncateAfter('pretrain', 0);
  const metrics = new RecordingSink(writer);
  const base = await timed('pretrain', () => pretrainBase(data, demo, config, config.seed, { log, metrics, runDir: paths.root, progress }));

  // Step 1: SFT from the pre-trained base.
  const sftConfig = stepConfig(config, 'sft', join(data.dir, 'sft.jsonl'), config.resume);
  sftConfig.actor.model = base.dir;
  await timed('sft', () => train(sftConfig, { log, metrics, progress, explicit: opts.explicit }));

  // Step 2: preference pairs from the SFT actor, then the reward model (from the pre-trained base, as DeepSpeed-Chat starts its RM from a base model).
  const pairsPath = join(paths.root, 'rm_pairs.jsonl');
  const pairs = config.resume && existsSync(pairsPath)
    ? { pairs: readFileSync(pairsPath, 'utf8').split('\n').filter((l) => l !== '').length, ties: null }
    : await timed('rm_pairs', () => makePreferencePairs(paths.sft, data, demo, config, pairsPath, { log, runDir: paths.root, progress }));
  const rmConfig = stepConfig(config, 'rm', pairsPath, true);
  rmConfig.data.evalFraction = demo.rmEvalFraction;
  rmConfig.reward.model = base.dir;
  const rm = await timed('rm', () => train(rmConfig, { log, metrics, progress, explicit: opts.explicit }));

  // Step 3: PPO; each step's answers also get their gold score (for the report's curves).
  const tok = QTokenizer.load(paths.sft);
  const onExperience = (x: ExperienceView): Figures => {
    const s = summariseAnswers(decodeAnswers(tok, x.ids, x.mask, x.B, x.T, x.P));
    return { gold: s.meanScore, gold_per_word: s.meanPerWord, repetition: s.meanRepetition };
  };
  const ppoConfig = stepConfig(config, 'ppo', join(data.dir, 'rm_prompts.jsonl'), true);
  ppoConfig.actor.model = paths.sft;
  ppoConfig.reward.model = paths.rm;
  const ppo = await timed('ppo', () => train(ppoConfig, { log, metrics, progress, onExperience, explicit: opts.explicit }));

  // Before/after on the held-out prompts.
  const prompts = data.eval.map((e) => e.prompt);
  const ev = await timed('evaluate', () => evaluateBeforeAfter(paths.sft, paths.ppoActor, paths.rm, prompts, config, demo.evaluate.batchSize, { runDir: paths.root, progress }));

  // The pipeline left the final models at <run>/actor, critic and reward.
  const actorDir = paths.actor;
  const ppoSteps = ppo.ppo?.steps ?? 0;
  const rmEval = rm.rm?.evalAfter;
  const summary: RunSummary = {
    ...goldSummary(prompts, ev.before.answers, ev.after.answers, demo.evaluate.samples),
    reward: { before: ev.before.reward, after: ev.after.reward },
    rm: { accuracy: rmEval?.accuracy ?? undefined, pairs: pairs.pairs },
    kl: { final: metrics.last.get('ppo')?.kl ?? undefined },
    // The KL of the evaluation answers (held-out prompts), beside the last PPO step's.
    kl_eval: { before: ev.before.kl, after: ev.after.kl },
    rm_eval_pairs: rmEval?.pairs ?? 0,
    rm_pairs_ties_dropped: pairs.ties,
    time: { per_step_s: ppoSteps > 0 ? phases.ppo / ppoSteps : undefined, total_s: (performance.now() - started) / 1000, phases_s: phases },
    seed: config.seed,
    pretrain: { steps: base.steps, final_loss: base.finalLoss, cached: base.cached },
    sft_eval_loss: metrics.last.get('sft')?.eval_loss ?? null,
    ppo_steps: ppoSteps,
    eval_prompts: prompts.length,
    actor: actorDir,
  };
  writeSummary(join(paths.root, 'summary.json'), summary);
  writeFileSync(join(paths.root, 'demo-options.json'), JSON.stringify(demo, null, 2) + '\n');
  const rep = writeReport(paths.root, { title: 'Quartet demo' });
  log(`report: ${join(paths.root, 'report.html')}${rep.problems.length ? ` (${rep.problems.length} problem(s): ${rep.problems.slice(0, 3).join('; ')})` : ''}`);
  return { runDir: paths.root, summary, actorDir };
}

/** `quartet train` with no model and no data (and `npm start`): the demo with configs/demo.json under the user's flags. */
export async function runDemo(argv: string[]): Promise<number> {
  const file = findConfigFile('demo');
  const { config, explicit } = loadConfig(argv, { source: file, values: readConfigFile(file) });
  const log = (line: string) => printAbove(line);
  log('quartet: no model and no data given, so this runs the embedded demo: a small GPT trained from scratch on the Brown corpus,\n' +
    'then SFT, a reward model on AFINN-labelled answer pairs, and PPO; gold sentiment scores before and after PPO show what RLHF did.');
  const r = await runDemoWith({ config, log, explicit });
  console.log('\n' + summaryText(r.summary, { samples: 3 }));
  const rel = relative(process.cwd(), r.runDir) || '.';
  console.log(`\nReport: ${join(rel, 'report.html')}    Summary: ${join(rel, 'summary.json')}`);
  console.log(`Talk to the result: npx quartet chat --model ${join(rel, 'actor')}`);
  return 0;
}
