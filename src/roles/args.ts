// The start-up arguments of the model roles (docs/roles.md): only what builds
// the engine in the role process, fixed for its life. Written by the
// placement plan (src/config/plan.ts), read and checked by actors/startup.ts.
// Everything a call may change travels in its request meta (methods.ts).

export interface LoraArgs {
  /** LoRA rank; 0: no adapters (the other keys are then not read). */
  dim: number;
  alpha: number;
  /** Substrings of Hugging Face module paths; empty: every linear of the blocks. */
  moduleNames: string[];
  onlyOptimizeLora: boolean;
  /** The adapters' learning rate at the schedule's peak. */
  lr: number;
}

/** What the optimizer groups and the forward are built with. Absent: the model as its folder has it, no LoRA. */
export interface TrainingArgs {
  /**
   * The peak learning rate of the base weights in this step. Not a per-call
   * knob: a call's lr / this is the schedule factor the adapters' rate follows
   * (LoRA builds its optimizer group with it).
   */
  lr: number;
  dropout: boolean;
  gradientCheckpointing: boolean;
  lora: LoraArgs;
}

export interface EngineArgs {
  /** Hugging Face folder the model loads from (and the tokenizer files are copied from on save). */
  model: string;
  seed: number;
  training?: TrainingArgs;
  /** Kernel threads, when the role should use fewer than the cores of its device entry. */
  threads?: number;
  /** Load NaN or infinite weights (present, true, only with checks.allowNonFiniteWeights). */
  allowNonFiniteWeights?: boolean;
}

export interface ActorArgs extends EngineArgs {
  /**
   * Beta of the moving average of the weights kept over PPO updates; 0 or
   * absent (an actor that never trains PPO, e.g. in a test): none.
   * Start-up, not meta: the average is engine state that lives from the first
   * update on and is saved with the optimizer state.
   */
  ema?: number;
}

/**
 * What a custom reward process (reward.kind command) finds in QUARTET_ARGS
 * (docs/protocol.md): it has no model of the plan, but may want the
 * tokenizer that made the ids it scores, and a place for its own files.
 */
export interface CommandRewardArgs {
  /** Folder with tokenizer.json (+ tokenizer_config.json): the actor's, which made the ids (null only in a plan made before actor.model is known). */
  tokenizer: string | null;
  /** The run directory (absolute); the process also starts in it. */
  runDir: string;
}

/** The built-in HTTP reward role (reward.kind http, actors/reward-http.ts). */
export interface HttpRewardArgs {
  url: string;
  connectTimeoutMs: number;
  readTimeoutMs: number;
  /** Retries of a failed POST (a refused connection, a timeout, a 5xx or 429 answer). */
  retries: number;
  /** Wait before the first retry, doubled for each next one. */
  backoffMs: number;
  /** POSTs in flight at once. */
  maxConcurrency: number;
  /** Rows per POST; 0: all rows of a call. */
  batchSize: number;
}
