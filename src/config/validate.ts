// Validation of a (partial) configuration against the schema: every problem is
// collected and reported at once, each naming the full key path, what was
// expected and what was given, and for an unknown key the nearest known one.
import { roleNames, schema, type Config, type RoleName, type StepName } from './defaults.js';
import { defaultsOf, flattenSchema, isField, typeName, type Field, type Section } from './schema.js';

export interface ConfigProblem {
  /** Full dotted key path, e.g. 'actor.lr'. */
  key: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly source: string, readonly problems: ConfigProblem[]) {
    super(`invalid configuration (${source}):\n` + problems.map((p) => `  ${p.key}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

const allKeys = flattenSchema(schema).map(([k]) => k);
const allSections = sectionPaths(schema);

function sectionPaths(s: Section, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(s)) {
    if (isField(v)) continue;
    const path = prefix ? `${prefix}.${k}` : k;
    out.push(path, ...sectionPaths(v, path));
  }
  return out;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The known key nearest to an unknown one, if any is close: compares the full
 *  path and also the last segment alone (so 'critic.learningRate' finds
 *  'critic.lr' poorly but 'actor.weightdecay' finds 'actor.weightDecay'). */
export function suggestKey(unknown: string): string | undefined {
  const lower = unknown.toLowerCase();
  const last = lower.split('.').pop()!;
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of [...allKeys, ...allSections]) {
    const kl = k.toLowerCase();
    const d = Math.min(levenshtein(lower, kl), levenshtein(last, kl.split('.').pop()!) + (sameParent(lower, kl) ? 0 : 2));
    if (d < bestDist) { bestDist = d; best = k; }
  }
  return bestDist <= Math.max(2, Math.floor(unknown.length / 4)) ? best : undefined;
}

function sameParent(a: string, b: string): boolean {
  return a.split('.').slice(0, -1).join('.') === b.split('.').slice(0, -1).join('.');
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list (${JSON.stringify(v).slice(0, 60)})`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** Checks one value against its field; returns an error message or undefined. */
export function checkField(f: Field<unknown>, v: unknown): string | undefined {
  const expected = `expected ${typeName(f)}, got ${describe(v)}`;
  if (v === null) return f.nullable ? undefined : expected;
  switch (f.kind) {
    case 'number':
    case 'integer': {
      if (typeof v !== 'number' || !Number.isFinite(v)) return expected;
      if (f.kind === 'integer' && !Number.isInteger(v)) return expected;
      if (f.min !== undefined && v < f.min) return `must be >= ${f.min}, got ${v}`;
      if (f.max !== undefined && v > f.max) return `must be <= ${f.max}, got ${v}`;
      return undefined;
    }
    case 'boolean':
      return typeof v === 'boolean' ? undefined : expected;
    case 'string':
      if (typeof v !== 'string') return expected;
      if (f.pattern && !f.pattern.re.test(v)) return `expected ${f.pattern.what}, got ${describe(v)}`;
      return undefined;
    case 'enum':
      return typeof v === 'string' && f.values!.includes(v) ? undefined : expected;
    case 'stringList':
    case 'enumList': {
      if (!Array.isArray(v)) return expected;
      for (const [i, item] of v.entries()) {
        if (typeof item !== 'string') return `item ${i}: ${expected}`;
        if (f.kind === 'enumList' && !f.values!.includes(item)) return `item ${i}: ${expected}`;
        if (f.pattern && !f.pattern.re.test(item)) return `item ${i}: expected ${f.pattern.what}, got ${describe(item)}`;
      }
      return undefined;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Walks `input` against `section`, writing accepted values into `out` and problems into `problems`. */
function merge(section: Section, input: unknown, out: Record<string, unknown>, prefix: string, problems: ConfigProblem[]): void {
  if (!isPlainObject(input)) {
    problems.push({ key: prefix || '(root)', message: `expected an object of keys, got ${describe(input)}` });
    return;
  }
  for (const [k, v] of Object.entries(input)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const entry = Object.hasOwn(section, k) ? section[k] : undefined;
    if (!entry) {
      const near = suggestKey(key);
      problems.push({ key, message: `unknown key${near ? ` (did you mean '${near}'?)` : ''}` });
      continue;
    }
    if (isField(entry)) {
      const msg = checkField(entry, v);
      if (msg) problems.push({ key, message: msg });
      else out[k] = structuredClone(v);
    } else {
      merge(entry, v, out[k] as Record<string, unknown>, key, problems);
    }
  }
}

/** Rules that tie several keys together. */
function crossChecks(c: Config, problems: ConfigProblem[]): void {
  for (const role of roleNames) {
    const r = c[role];
    if (r.devices.length === 0) problems.push({ key: `${role}.devices`, message: 'needs at least one device' });
    else if (r.devices.length !== 1 && r.devices.length !== r.replicas) {
      problems.push({ key: `${role}.devices`, message: `${r.devices.length} entries for ${role}.replicas = ${r.replicas}: give one entry shared by every replica, or one per replica (e.g. ['cuda:0', 'cuda:1'] for 2, or ['cuda:0,1'] for one replica on two GPUs)` });
    }
  }
  for (const role of roleNames) {
    const nodes = c[role].node?.split(',').map((n) => n.trim());
    if (!nodes) continue;
    if (nodes.length !== 1 && nodes.length !== c[role].replicas)
      problems.push({ key: `${role}.node`, message: `${nodes.length} names for ${role}.replicas = ${c[role].replicas}: give one machine shared by every replica, or one per replica (e.g. 'local,gpu-2' for 2)` });
    if (nodes.some((n) => n !== 'local') && c.runtime.listen === null)
      problems.push({ key: 'runtime.listen', message: `${role}.node = '${c[role].node}' places replicas on other machines: set runtime.listen to tcp://HOST:PORT where their node agents join` });
  }
  if (c.runtime.listen !== null && !/^tcp:\/\/[^:]+:\d+$/.test(c.runtime.listen))
    problems.push({ key: 'runtime.listen', message: `must be tcp://HOST:PORT with a fixed port (node agents rejoin it at every step of the run), got '${c.runtime.listen}'` });
  if (c.reward.kind === 'command' && (!c.reward.command || c.reward.command.length === 0)) {
    problems.push({ key: 'reward.command', message: "reward.kind is 'command' but no command line is given" });
  }
  rewardChecks(c, problems);
  if (c.ppo.ptxCoef > 0 && c.data.ptxPaths.length === 0 && c.steps.includes('ppo')) {
    problems.push({ key: 'data.ptxPaths', message: 'ppo.ptxCoef > 0 needs plain-text data in data.ptxPaths' });
  }
  const shares = c.data.split.split(',').map(Number);
  // DPO trains on preference pairs, the rm share (as DeepSpeed-Chat's step2_dpo does).
  const stepIndex = { sft: 0, rm: 1, ppo: 2, dpo: 1 } as const;
  if (c.data.paths.length > 0) {
    for (const step of c.steps) {
      if (!(shares[stepIndex[step]] > 0)) {
        problems.push({ key: 'data.split', message: `'${c.data.split}' gives the ${step} step no data, but steps include '${step}'` });
      }
    }
  }
  if (c.steps.includes('dpo')) {
    const other = c.steps.filter((s) => s === 'rm' || s === 'ppo');
    if (other.length > 0) problems.push({ key: 'steps', message: `'dpo' replaces the reward model and PPO; run [sft, dpo] or [${c.steps.filter((s) => s !== 'dpo').join(', ')}], not both (got [${c.steps.join(', ')}])` });
    if (c.steps.includes('sft') && c.steps.indexOf('sft') > c.steps.indexOf('dpo')) problems.push({ key: 'steps', message: "'dpo' starts from the SFT output: list 'sft' before 'dpo'" });
  }
  // Every replica of a training call must get a row: one that got none would
  // never join the gradient all-reduce the others wait in.
  const perReplica: [StepName, string, number, RoleName][] = [
    ['sft', 'sft.batchSize', c.sft.batchSize, 'actor'],
    ['rm', 'rm.batchSize', c.rm.batchSize, 'reward'],
    ['dpo', 'dpo.batchSize', c.dpo.batchSize, 'actor'],
    ['ppo', 'ppo.trainBatchSize', c.ppo.trainBatchSize, 'actor'],
  ];
  if (c.ppo.algorithm === 'ppo') perReplica.push(['ppo', 'ppo.trainBatchSize', c.ppo.trainBatchSize, 'critic']);
  for (const [step, key, rows, role] of perReplica) {
    if (c.steps.includes(step) && rows < c[role].replicas) {
      problems.push({ key, message: `${key} = ${rows} is smaller than ${role}.replicas = ${c[role].replicas}: every replica needs at least one row of each training batch; raise ${key} or lower ${role}.replicas` });
    }
  }
  const seen = new Set<string>();
  for (const step of c.steps) {
    if (seen.has(step)) problems.push({ key: 'steps', message: `'${step}' is listed twice` });
    seen.add(step);
  }
}

/** What a custom scorer (kind command or http) needs from the rest of the config. */
function rewardChecks(c: Config, problems: ConfigProblem[]): void {
  const r = c.reward;
  if (r.kind === 'http' && (r.url === null || !/^https?:\/\/[^/]+/.test(r.url)))
    problems.push({ key: 'reward.url', message: `reward.kind is 'http' but ${r.url === null ? 'no URL is given' : `'${r.url}' is not an http:// or https:// URL`}` });
  // The critic starts from the reward model (DeepSpeed-Chat's step 3); a custom scorer is no model to start from.
  const needsCritic = c.steps.includes('ppo') && c.ppo.algorithm === 'ppo' && r.kind !== 'model';
  if (needsCritic && c.critic.model === null && r.model === null && !c.steps.slice(0, c.steps.indexOf('ppo')).includes('rm'))
    problems.push({ key: 'critic.model', message: `reward.kind is '${r.kind}', so the critic has no reward model to start from: set critic.model to a model folder (e.g. a trained reward model, or the actor's), or run an rm step before ppo (or use ppo.algorithm grpo or rloo, which need no critic)` });
}

/**
 * Merges a partial configuration over the defaults and validates it.
 * `layers` are applied in order (e.g. the config file, then command-line
 * overrides), each a nested object of keys; `source` names them in errors.
 */
export function resolveConfig(layers: { source: string; values: unknown }[]): Config {
  const out = defaultsOf(schema) as unknown as Record<string, unknown>;
  for (const layer of layers) {
    const problems: ConfigProblem[] = [];
    merge(schema, layer.values, out, '', problems);
    if (problems.length) throw new ConfigError(layer.source, problems);
  }
  const config = out as unknown as Config;
  const problems: ConfigProblem[] = [];
  crossChecks(config, problems);
  if (problems.length) throw new ConfigError(layers.map((l) => l.source).join(' + ') || 'defaults', problems);
  return config;
}
