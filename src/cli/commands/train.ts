// `quartet train` (all steps in order, each feeding the next) and the steps
// alone: `quartet sft`, `quartet rm`, `quartet ppo`, and `quartet dpo` (the
// alternative to rm + ppo). Configuration: the
// defaults < --config files < --key=value flags; the resolved config is
// printed and saved as <outputDir>/config.json. With --resume, the saved
// config of the run is the base, so `quartet train --output-dir D --resume`
// continues run D as it was started.
//
// `quartet train` with neither a model nor data runs the embedded demo
// (ARCHITECTURE.md §6) through `runDemo(argv)` of src/demo/run.ts.
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from '../main.js';
import type { StepName } from '../../config/defaults.js';
import { loadConfig, readConfigFile, type LoadedConfig } from '../../config/load.js';
import { configHelp, formatConfigChanges } from '../../config/print.js';
import { printAbove } from '../../util/progress.js';
import { train } from '../../coordinator/pipeline.js';

const STEP_TEXT: Record<StepName, string> = {
  sft: 'supervised fine-tuning of the actor (step 1)',
  rm: 'reward-model training (step 2)',
  ppo: 'PPO of the actor against the reward model (step 3)',
  dpo: 'direct preference optimisation of the SFT actor on preference pairs (instead of steps 2 and 3)',
};

/** The config sections and keys each step command reads (--help lists these; --help-all every key). */
const COMMON = ['seed', 'outputDir', 'resume', 'keepCheckpoints', 'data', 'runtime'];
/** SFT and DPO train the actor group with their own optimiser keys; the actor's own lr, schedule... are PPO's. */
const actorBesidesOptimiser = ['model', 'devices', 'replicas', 'threads', 'node', 'maxRestarts', 'gradClip', 'gradientCheckpointing', 'lora'].map((k) => `actor.${k}`);
const STEP_KEYS: Record<StepName, string[]> = {
  sft: [...COMMON, ...actorBesidesOptimiser, 'sft'],
  rm: [...COMMON, 'reward', 'rm'],
  ppo: [...COMMON, 'actor', 'critic', 'reference', 'reward', 'ppo'],
  dpo: [...COMMON, ...actorBesidesOptimiser, 'reference', 'dpo'],
};

function usage(name: string, step: StepName | null, all: boolean): string {
  const what = step ? STEP_TEXT[step] : 'SFT, reward model and PPO in order, each step\'s output feeding the next';
  const needs = step === 'sft' ? '--actor-model DIR --data FILE'
    : step === 'rm' ? '--reward-model DIR --data FILE'
    : step === 'ppo' ? '--actor-model SFT_DIR --reward-model RM_DIR --data FILE'
    : step === 'dpo' ? '--actor-model SFT_DIR --data FILE'
    : '--actor-model DIR --reward-model DIR --data FILE';
  return `Usage: npx quartet ${name} ${needs} [--config FILE]... [--output-dir DIR] [--resume] [--key=value]...

Runs ${what}.
${step === null ? 'With no model and no data, runs the embedded demo instead (a small model trained from scratch on this machine).\n' : ''}
  --config FILE        a JSON file of config keys (repeatable; a bare name is looked up in configs/)
${step === 'rm' ? '' : '  --actor-model DIR    actor.model: the policy to start from (Hugging Face folder)\n'}${step === 'sft' || step === 'dpo' ? '' : `  --reward-model DIR   reward.model: the reward model's starting folder${step === 'ppo' ? ' (a trained one, from npx quartet rm)' : ''}\n`}  --data FILE|DIR      data.paths: JSONL/JSON with prompt/chosen/rejected, or a dataset folder (comma-separated for several)
${step ? '' : '  --steps LIST         steps: which of sft,rm,ppo to run (or sft,dpo)\n'}  --output-dir DIR     outputDir: the run directory
  --resume             continue the run in --output-dir from its last checkpoint
  --seed N             seed
  --a.b=value          any configuration key below
  --help-all           list every configuration key, also those this command does not use

${configHelp(step && !all ? STEP_KEYS[step] : undefined)}`;
}

/** Where the run's final models are, and the command that talks to the actor. */
function finalModels(runDir: string): string {
  const rel = relative(process.cwd(), runDir) || '.';
  const found = (['actor', 'critic', 'reward'] as const).filter((m) => existsSync(join(runDir, m, 'config.json')));
  if (found.length === 0) return '';
  const lines = found.map((m) => `  ${m.padEnd(7)} ${join(rel, m)}`);
  const talk = found.includes('actor') ? `\nTalk to the actor: npx quartet chat --model ${join(rel, 'actor')}` : '';
  return `Final models (Hugging Face folders):\n${lines.join('\n')}${talk}`;
}

/** Resolves the config; with --resume the run's saved config.json is the base that the arguments override. */
function resolve(argv: string[], step: StepName | null): LoadedConfig {
  const base = step ? { source: `quartet ${step}`, values: { steps: [step] } } : undefined;
  let loaded = loadConfig(argv, base);
  if (loaded.config.resume) {
    const saved = join(loaded.config.outputDir, 'config.json');
    if (existsSync(saved)) {
      const values = readConfigFile(saved) as Record<string, unknown>;
      loaded = loadConfig(argv, { source: saved, values: step ? { ...values, steps: [step] } : values });
    }
  }
  if (step) loaded.config.steps = [step];
  return loaded;
}

/** The embedded demo (src/demo/run.ts), loaded only when it runs: it pulls in the corpus and the gold scorer. */
async function runDemo(argv: string[]): Promise<number> {
  const { runDemo: run } = await import('../../demo/run.js');
  return run(argv);
}

function makeCommand(name: string, step: StepName | null, summary: string): Command {
  return {
    summary,
    async run(argv) {
      if (argv.includes('--help') || argv.includes('-h') || argv.includes('--help-all')) {
        console.log(usage(name, step, argv.includes('--help-all')));
        return 0;
      }
      const { config, rest, files, explicit } = resolve(argv, step);
      if (rest.length > 0) {
        console.error(`quartet ${name}: unexpected argument '${rest[0]}' (options are --key=value; see npx quartet ${name} --help)`);
        return 2;
      }
      if (step === null && config.actor.model === null && config.data.paths.length === 0) return runDemo(argv);
      console.log(`quartet ${name}: configuration${files.length ? ` (from ${files.join(', ')} and the command line)` : ''}, as its changes to the defaults (all keys: ${join(config.outputDir, 'config.json')})`);
      console.log(formatConfigChanges(config));
      let stopping = false;
      let code = 130;
      // Ctrl-C, or SIGTERM as a scheduler sends before preemption: finish the step, checkpoint every role, exit.
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopping) process.exit(code);
        stopping = true;
        code = signal === 'SIGTERM' ? 143 : 130;
        console.error(`\nquartet ${name}: ${signal}: stopping after the current step with a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to quit now)`);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const r = await train(config, { log: printAbove, shouldStop: () => stopping, explicit });
        const parts: string[] = [];
        if (r.sft) parts.push(`sft ${r.sft.steps} steps, eval loss ${r.sft.evalLossBefore?.toFixed(4) ?? '-'} -> ${r.sft.evalLossAfter?.toFixed(4) ?? '-'} (${r.sft.output})`);
        if (r.rm) parts.push(`rm ${r.rm.steps} steps, eval accuracy ${r.rm.evalBefore.accuracy?.toFixed(3) ?? '-'} -> ${r.rm.evalAfter.accuracy?.toFixed(3) ?? '-'} (${r.rm.output})`);
        if (r.dpo) parts.push(`dpo ${r.dpo.steps} steps, eval reward accuracy ${r.dpo.evalBefore.accuracy?.toFixed(3) ?? '-'} -> ${r.dpo.evalAfter.accuracy?.toFixed(3) ?? '-'} (${r.dpo.output})`);
        if (r.ppo) parts.push(`ppo ${r.ppo.steps} steps, reward ${r.ppo.firstReward?.toFixed(3) ?? '-'} -> ${r.ppo.lastReward?.toFixed(3) ?? '-'}`);
        if (r.skipped.length) parts.push(`skipped (done earlier): ${r.skipped.join(', ')}`);
        const how = stopping ? `stopped in ${r.runDir}; continue with: npx quartet ${name} --output-dir ${r.runDir} --resume` : `done in ${r.runDir}`;
        console.log(`quartet ${name}: ${how}${parts.length ? `\n  ${parts.join('\n  ')}` : ''}`);
        if (!stopping) console.log(finalModels(r.runDir));
        return stopping ? code : 0;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    },
  };
}

export const trainCommand = makeCommand('train', null, 'Run SFT, reward-model training and PPO in order (or the embedded demo with no model and data)');
export const sftCommand = makeCommand('sft', 'sft', 'Step 1: supervised fine-tuning of the actor');
export const rmCommand = makeCommand('rm', 'rm', 'Step 2: train a reward model on preference pairs');
export const ppoCommand = makeCommand('ppo', 'ppo', 'Step 3: PPO of the actor against a reward model (actor, critic, reference, reward)');
export const dpoCommand = makeCommand('dpo', 'dpo', 'DPO of the SFT actor on preference pairs against its frozen copy (instead of rm + ppo)');
