// Loading a run's configuration: defaults, then each --config file, then the
// command-line overrides (which win), validated as one.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { repoRoot } from '../util/paths.js';
import { parseArgs } from './cli.js';
import type { Config } from './defaults.js';
import { resolveConfig } from './validate.js';

/** A config named without a path ('demo') is looked up in the repository's configs/. */
export function findConfigFile(name: string): string {
  if (existsSync(name)) return name;
  const shipped = join(repoRoot, 'configs', name.endsWith('.json') ? name : `${name}.json`);
  if (existsSync(shipped)) return shipped;
  throw new Error(`config file '${name}' not found (nor ${shipped})`);
}

/** Parses a JSON config file; a syntax error names the file, line and column. */
export function readConfigFile(path: string): unknown {
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg);
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      const col = Number(pos[1]) - before.lastIndexOf('\n');
      throw new Error(`${path}:${line}:${col}: invalid JSON: ${msg}`);
    }
    throw new Error(`${path}: invalid JSON: ${msg}`);
  }
}

/**
 * A config file's `reward.command` names its script next to the file, as a
 * user writes it ("reward.py", "./scorers/x.py"), wherever quartet is started
 * from (and the process itself starts in the run directory). A word is a path
 * when it has a '/' or names a file beside the config; others ('python3',
 * '--flag') stay as they are.
 */
function relativeToFile(values: unknown, file: string): unknown {
  const command = (values as { reward?: { command?: unknown } } | null)?.reward?.command;
  if (!Array.isArray(command)) return values;
  const dir = dirname(file);
  const resolved = command.map((w) => {
    if (typeof w !== 'string' || w === '' || isAbsolute(w) || w.startsWith('-') || w.includes('://')) return w;
    // Absolute: the process starts in the run directory, not here.
    return w.includes('/') || existsSync(join(dir, w)) ? resolve(dir, w) : w;
  });
  const v = values as { reward: Record<string, unknown> };
  return { ...v, reward: { ...v.reward, command: resolved } };
}

export interface LoadedConfig {
  config: Config;
  /** Arguments that were not configuration (positional words, --help). */
  rest: string[];
  /** The config files applied, in order. */
  files: string[];
  /** The keys some layer set (a file, the command line, the base): the rest are defaults, which a run may fit to its models. */
  explicit: Set<string>;
}

/** The dotted keys a nested object of config values sets. */
export function keysSet(values: unknown, prefix = ''): string[] {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) return prefix ? [prefix] : [];
  return Object.entries(values).flatMap(([k, v]) => {
    const key = prefix ? `${prefix}.${k}` : k;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? keysSet(v, key) : [key];
  });
}

/**
 * Resolves the configuration of a command from its arguments: defaults <
 * `base` (a command's own overrides, e.g. the demo's) < --config files <
 * --key=value flags.
 */
export function loadConfig(argv: string[], base?: { source: string; values: unknown }): LoadedConfig {
  const args = parseArgs(argv);
  const files = args.configFiles.map(findConfigFile);
  const layers = [
    ...(base ? [base] : []),
    ...files.map((f) => ({ source: f, values: relativeToFile(readConfigFile(f), f) })),
    { source: 'command line', values: args.overrides },
  ];
  return { config: resolveConfig(layers), rest: args.rest, files, explicit: new Set(layers.flatMap((l) => keysSet(l.values))) };
}
