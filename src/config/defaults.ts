// The one defaults object of a Quartet run: every configuration key, its type,
// its default and its doc, in one tree. Config files in configs/ hold only
// overrides of it; `quartet <command> --help` lists it.
//
// Defaults follow DeepSpeed-Chat (its step scripts for OPT-1.3b and the
// argument defaults of training/step{1,2,3}*/main.py, and the constants of
// dschat/rlhf/ppo_trainer.py), except where a doc says otherwise.
import {
  bool, defaultsOf, enumList, int, num, oneOf, optStr, optStrList, str, strList,
  type Section, type ValueOf,
} from './schema.js';

/** A device entry: 'cpu' (any core, unpinned), cores 'cpu:0', 'cpu:0-3' or 'cpu:0,2', GPUs
 *  'cuda:0' or 'cuda:0,1', or kinds joined with '+' ('cuda:0+cpu:2-3'), as src/runtime/placement.ts reads them. */
const indexList = String.raw`\d+(-\d+)?(,\d+(-\d+)?)*`;
const devicePart = String.raw`(cpu(:${indexList})?|cuda:${indexList})`;
export const devicePattern = {
  re: new RegExp(String.raw`^${devicePart}(\+${devicePart})*$`),
  what: "a device such as 'cpu', 'cpu:0-3', 'cuda:0' or 'cuda:0+cpu:2-3'",
};

/** Where a role runs and how it is supervised: the keys every role has. */
function placementKeys(devices: string[]) {
  return {
    devices: strList(devices, 'Devices: one entry shared by every replica, or one entry per replica.', devicePattern),
    replicas: int(1, 'Number of replicas in the group; a batch is sharded across them.', { min: 1 }),
    threads: int(0, 'Kernel threads per replica; 0 = one per CPU core of its device entry (all cores for plain cpu).', { min: 0 }),
    node: optStr('Machine (node agent name) to run on, or names separated by commas, one per replica (\'local,gpu-2\'); null = the coordinator\'s machine.'),
    maxRestarts: int(3, 'Times a replica whose process dies is restarted before the run fails; 0 = never.', { min: 0 }),
  };
}

/** Optimiser keys of a role that trains (actor in SFT and PPO, critic in PPO, reward in RM). */
function trainingKeys(lr: number, weightDecay: number, warmup: number) {
  return {
    lr: num(lr, 'Peak learning rate (AdamW).', { min: 0 }),
    weightDecay: num(weightDecay, 'AdamW weight decay (not applied to biases and norms).', { min: 0 }),
    schedule: oneOf(['constant', 'linear', 'cosine'] as const, 'cosine', 'Learning-rate schedule after warmup.'),
    warmup: int(warmup, 'Warmup steps (optimizer steps) of the schedule.', { min: 0 }),
    gradClip: num(1.0, 'Clip the global gradient norm to this value; 0 = no clipping.', { min: 0 }),
    dropout: bool(false, "Keep the model's dropout during training (DeepSpeed-Chat's scripts turn it off)."),
    gradientCheckpointing: bool(false, 'Recompute each transformer block in the backward instead of keeping its activations (less memory, one more forward).'),
    lora: {
      dim: int(0, 'LoRA rank; 0 = no LoRA.', { min: 0 }),
      alpha: num(1, 'LoRA scaling (DeepSpeed-Chat lora_scaling).', { min: 0 }),
      moduleNames: strList([], 'Substrings of the linear layers given LoRA adapters; empty = every linear layer of the transformer blocks.'),
      onlyOptimizeLora: bool(false, 'Freeze the base weights and train only the LoRA adapters.'),
      lr: num(5e-4, 'Learning rate of the LoRA adapters.', { min: 0 }),
    },
  };
}

export const schema = {
  seed: int(1234, 'Seed of every random choice of the run (data split, shuffling, sampling, dropout).', { min: 0 }),
  outputDir: str('output', 'Run directory: resolved config, metrics, checkpoints, data cache, logs.'),
  steps: enumList(['sft', 'rm', 'ppo', 'dpo'] as const, ['sft', 'rm', 'ppo'], "Steps to run, in order; 'dpo' (after sft) replaces rm and ppo."),
  resume: bool(false, 'Continue the run in outputDir from its last checkpoint.'),
  keepCheckpoints: int(3, 'Checkpoints kept per step (the newest; each holds the models with their optimizer state); 0 = keep all.', { min: 0 }),
  // Bad numbers stop a run with the file, tensor, step and role named, rather than training on to a NaN "done".
  checks: {
    allowNonFiniteWeights: bool(false, 'Load model weights that hold NaN or infinite values (refused by default, naming the file and tensor).'),
    maxSkippedSteps: int(3, 'Training stops with an error after this many optimizer steps in a row skipped for a non-finite loss or gradient norm (1 = at the first); 0 = never (skip and go on).', { min: 0 }),
  },

  data: {
    paths: strList([], 'Datasets: JSONL/JSON files with prompt/chosen/rejected, or Hugging Face dataset folders (parquet or JSON). Several are blended.'),
    split: str('2,4,4', 'Shares of each dataset given to the sft, rm and ppo steps.', { re: /^\s*\d+(\.\d+)?\s*,\s*\d+(\.\d+)?\s*,\s*\d+(\.\d+)?\s*$/, what: "three comma-separated shares such as '2,4,4'" }),
    evalFraction: num(0.1, 'Share held out for evaluation from a dataset that has no test split of its own (DeepSpeed-Chat uses 9,1).', { min: 0, max: 0.9 }),
    maxPromptLen: int(256, 'Maximum prompt tokens; longer prompts lose their beginning (left truncation).', { min: 1 }),
    maxAnswerLen: int(256, 'Maximum answer tokens (with the end-of-conversation token) in SFT and RM examples; longer ones lose their end.', { min: 1 }),
    endOfConversationToken: str('<|endoftext|>', 'Appended to every chosen and rejected answer.'),
    promptTemplate: str('Human: {prompt} Assistant:', "Wraps a raw prompt; prompts that already end with 'Assistant:' (the Dahoas sets) are used as they are."),
    onBadRow: oneOf(['error', 'skip'] as const, 'error', 'A malformed dataset row stops the run, or is reported (file:line) and skipped.'),
    cacheDir: optStr('Tokenised-data cache; null = <outputDir>/data-cache.'),
    workers: int(0, 'Tokenising worker threads; 0 = one per CPU core, at most 4.', { min: 0 }),
    ptxPaths: strList([], 'Plain-text data for the PPO ptx loss: .txt files or JSONL with a "text" field.'),
  },

  actor: {
    model: optStr('Folder of the actor model (Hugging Face format); the SFT output when running all steps.'),
    ...placementKeys(['cpu']),
    // These optimiser keys are the actor's PPO settings; SFT has its own in sft.*.
    ...trainingKeys(9.65e-6, 0, 100),
  },
  critic: {
    model: optStr('Folder of the critic model; the RM output when running all steps.'),
    ...placementKeys(['cpu']),
    ...trainingKeys(5e-6, 0, 100),
  },
  reference: {
    model: optStr('Folder of the reference model; null = the actor\'s starting model.'),
    ...placementKeys(['cpu']),
  },
  reward: {
    kind: oneOf(['model', 'command', 'http'] as const, 'model', 'A trained reward model, a custom scorer process speaking the protocol (docs/protocol.md), or an HTTP scorer at reward.url.'),
    model: optStr('Folder of the reward model (kind model); the RM output when running all steps.'),
    command: optStrList("Command line of a custom reward process (kind command), any language; relative paths resolve against the config file's folder, and it starts in the run directory."),
    url: optStr('HTTP scorer (kind http): each score call POSTs JSON {prompts, answers, eos} and takes {scores} back (docs/protocol.md).'),
    timeoutMs: int(120_000, "Deadline of one score call (a runtime.deadlines entry for 'score' wins): a scorer past it is stuck, and is restarted (reward.maxRestarts) with the call sent again.", { min: 1 }),
    retries: int(2, 'Score calls answered with a retriable error (and, for kind http, failed POSTs) are sent again this many times, with backoff, before the run fails.', { min: 0 }),
    http: {
      connectTimeoutMs: int(5000, 'Kind http: a POST whose connection is not made in this time fails (and is retried).', { min: 1 }),
      readTimeoutMs: int(30_000, 'Kind http: a POST whose answer has not arrived this long after it was sent fails (and is retried).', { min: 1 }),
      backoffMs: int(500, 'Kind http: wait before the first retry of a POST, doubled for each next one.', { min: 0 }),
      maxConcurrency: int(4, 'Kind http: POSTs in flight at once per reward replica.', { min: 1 }),
      batchSize: int(0, 'Kind http: rows per POST; 0 = all rows of a score call in one POST.', { min: 0 }),
    },
    ...placementKeys(['cpu']),
    ...trainingKeys(5e-5, 0.1, 0),
  },

  // SFT trains the actor group with the actor's gradClip and lora, but with
  // its own optimiser settings: DeepSpeed-Chat runs step 1 and step 3 with
  // separate arguments (and the demo needs a 10x larger SFT learning rate).
  sft: {
    lr: num(9.65e-6, 'Peak learning rate of SFT (actor.lr is the PPO one).', { min: 0 }),
    weightDecay: num(0, 'AdamW weight decay in SFT.', { min: 0 }),
    schedule: oneOf(['constant', 'linear', 'cosine'] as const, 'cosine', 'Learning-rate schedule of SFT after warmup.'),
    warmup: int(0, 'Warmup steps of SFT.', { min: 0 }),
    dropout: bool(true, "Keep the model's dropout in SFT (DeepSpeed-Chat's step 1 does)."),
    epochs: int(1, 'Passes over the SFT data.', { min: 1 }),
    batchSize: int(16, 'Examples per micro-batch (summed over replicas).', { min: 1 }),
    gradAccum: int(1, 'Micro-batches per optimizer step.', { min: 1 }),
    maskPrompt: bool(false, 'Train on answer tokens only (DeepSpeed-Chat trains on the whole sequence).'),
    evalEvery: int(0, 'Evaluate perplexity every N optimizer steps; 0 = at the end of each epoch.', { min: 0 }),
    evalBatchSize: int(16, 'Examples per evaluation batch.', { min: 1 }),
    maxSteps: int(0, 'Stop after this many optimizer steps; 0 = no limit.', { min: 0 }),
    saveEvery: int(0, 'Checkpoint (model, optimizer state, data position) every N SFT steps for --resume; 0 = only when stopped early.', { min: 0 }),
  },
  rm: {
    epochs: int(1, 'Passes over the RM pairs.', { min: 1 }),
    batchSize: int(16, 'Pairs per micro-batch (summed over replicas).', { min: 1 }),
    gradAccum: int(1, 'Micro-batches per optimizer step.', { min: 1 }),
    evalEvery: int(0, 'Evaluate accuracy every N optimizer steps; 0 = at the end of each epoch.', { min: 0 }),
    evalBatchSize: int(16, 'Pairs per evaluation batch.', { min: 1 }),
    maxSteps: int(0, 'Stop after this many optimizer steps; 0 = no limit.', { min: 0 }),
    saveEvery: int(0, 'Checkpoint (model, optimizer state, data position) every N RM steps for --resume; 0 = only when stopped early.', { min: 0 }),
  },
  // DPO (DeepSpeed-Chat's step2_dpo) trains the actor group against the frozen
  // SFT policy in the reference group, on the rm share of the data; the
  // actor's gradClip and lora apply, the optimiser settings are its own.
  dpo: {
    beta: num(0.1, 'Strength of the implicit KL constraint: the loss is -logsigmoid(beta * margin over the reference).', { min: 1e-6 }),
    labelSmoothing: num(0, 'Share of pairs assumed mislabelled (conservative DPO); 0 = plain DPO.', { min: 0, max: 0.5 }),
    lr: num(5e-5, "Peak learning rate of DPO (DeepSpeed-Chat's step2_dpo script for OPT-350m).", { min: 0 }),
    weightDecay: num(0.1, 'AdamW weight decay in DPO (as that script).', { min: 0 }),
    schedule: oneOf(['constant', 'linear', 'cosine'] as const, 'cosine', 'Learning-rate schedule of DPO after warmup.'),
    warmup: int(0, 'Warmup steps of DPO.', { min: 0 }),
    dropout: bool(false, "Keep the model's dropout in DPO."),
    epochs: int(1, 'Passes over the preference pairs.', { min: 1 }),
    batchSize: int(16, 'Pairs per micro-batch (summed over replicas).', { min: 1 }),
    gradAccum: int(1, 'Micro-batches per optimizer step.', { min: 1 }),
    evalEvery: int(0, 'Evaluate the held-out pairs every N optimizer steps; 0 = at the end of each epoch.', { min: 0 }),
    evalBatchSize: int(16, 'Pairs per evaluation batch.', { min: 1 }),
    maxSteps: int(0, 'Stop after this many optimizer steps; 0 = no limit.', { min: 0 }),
    saveEvery: int(0, 'Checkpoint (model, optimizer state, data position) every N DPO steps for --resume; 0 = only when stopped early.', { min: 0 }),
  },
  ppo: {
    algorithm: oneOf(['ppo', 'grpo', 'rloo'] as const, 'ppo', 'ppo (with a critic and GAE), or the critic-free grpo / rloo.'),
    epochs: int(1, 'Passes over the PPO prompts.', { min: 1 }),
    maxSteps: int(0, 'Stop after this many PPO steps; 0 = no limit.', { min: 0 }),
    promptBatchSize: int(16, 'Prompts per generation batch (summed over actor replicas).', { min: 1 }),
    trainBatchSize: int(16, 'Sequences per PPO training micro-batch.', { min: 1 }),
    generationBatches: int(1, 'Generation batches of experience gathered before training on them.', { min: 1 }),
    ppoEpochs: int(1, 'Training passes over each gathered experience.', { min: 1 }),
    groupSize: int(4, 'Answers sampled per prompt (grpo and rloo only).', { min: 2 }),
    maxNewTokens: int(256, 'Maximum generated answer tokens.', { min: 2 }),
    temperature: num(1.0, 'Sampling temperature; 0 = greedy.', { min: 0 }),
    topK: int(0, 'Sample among the k most likely tokens; 0 = all.', { min: 0 }),
    topP: num(1.0, 'Nucleus sampling mass; 1 = off.', { min: 0, max: 1 }),
    klCtl: num(0.1, 'Weight of the per-token KL penalty -klCtl*(logp - ref_logp).', { min: 0 }),
    clipRewardValue: num(5, 'Reward scores are clipped to [-v, v].', { min: 0 }),
    clipRange: num(0.2, 'Policy ratio clip (1 +- clipRange).', { min: 0 }),
    clipRangeValue: num(0.2, 'Value clip around the old values (+- clipRangeValue).', { min: 0 }),
    gamma: num(1.0, 'Discount of GAE.', { min: 0, max: 1 }),
    lambda: num(0.95, 'lambda of GAE.', { min: 0, max: 1 }),
    ptxCoef: num(0, 'Weight of the unsupervised ptx loss on data.ptxPaths; 0 = off (DeepSpeed-Chat uses 27.8 when on).', { min: 0 }),
    ema: bool(false, 'Keep an exponential moving average of the actor and save it too.'),
    emaBeta: num(0.992, 'EMA decay (DeepSpeed-Chat 0.992).', { min: 0, max: 1 }),
    overlap: bool(false, 'Generate batch k+1 while batch k trains (one step off-policy).'),
    saveEvery: int(0, 'Checkpoint every N PPO steps; 0 = only at the end.', { min: 0 }),
  },
  // Other machines: `quartet node --coordinator <listen> --keys <outputDir>/keys/node.json` on each.
  runtime: {
    listen: optStr('tcp://HOST:PORT (a fixed port) where node agents of other machines join the run; groups across machines average gradients on the ports after it; null = this machine only.'),
    nodeTimeout: int(600, 'Seconds a step waits for the node agents its placement names to join.', { min: 1 }),
    heartbeatTimeoutMs: int(5000, 'A role silent this long is declared hung, killed and restarted with its state (JavaScript roles beat from their own thread, also while they compute).', { min: 100 }),
    deadlines: strList([], "Deadlines of role methods as METHOD=SECONDS (e.g. train_ppo=900); a role past one is restarted with its state and the call sent again. Others: 10x the method's longest recent call, at least 120 s (600 s until 3 calls are measured).", { re: /^\w+=\d+(\.\d+)?$/, what: 'METHOD=SECONDS' }),
    replayLogMb: int(1024, 'Memory for the calls a restarted role replays onto its last checkpoint; past it the role checkpoints early.', { min: 1 }),
    faults: strList([], "Chaos testing: signals sent to roles at chosen calls, ROLE/REPLICA:METHOD:N:SIGKILL|SIGSTOP|SIGTERM[:MS_AFTER_SENDING] (docs/recovery.md).", { re: /^[\w-]+\/\d+:\w+:\d+:SIG(KILL|STOP|TERM)(:\d+)?$/, what: 'ROLE/REPLICA:METHOD:N:SIGNAL[:MS]' }),
  },
} satisfies Section;

/** The validated configuration of a whole run. */
export type Config = ValueOf<typeof schema>;
export type StepName = Config['steps'][number];
export type RoleName = 'actor' | 'critic' | 'reference' | 'reward';
export const roleNames: readonly RoleName[] = ['actor', 'critic', 'reference', 'reward'];

/** A fresh copy of the defaults. */
export function defaultConfig(): Config {
  return defaultsOf(schema);
}
