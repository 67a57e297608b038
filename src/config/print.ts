// Showing configuration to people: the resolved config (printed at start and
// saved as JSON in the run directory) and the list of keys for --help.
import { writeFileSync } from 'node:fs';
import { makeDirs, onDisk } from '../util/disk.js';
import { join } from 'node:path';
import { schema, type Config } from './defaults.js';
import { flattenSchema, typeName } from './schema.js';

function getPath(obj: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], obj);
}

/** One `key = value` line per key; keys that differ from the defaults are marked with '*'. */
export function formatConfig(config: Config): string {
  const rows = flattenSchema(schema).map(([key, f]) => {
    const v = getPath(config, key);
    const changed = JSON.stringify(v) !== JSON.stringify(f.default);
    return `${changed ? '*' : ' '} ${key} = ${JSON.stringify(v)}`;
  });
  return rows.join('\n');
}

/** Only the keys that differ from the defaults, `key = value` one per line (the whole config is in config.json). */
export function formatConfigChanges(config: Config): string {
  const rows = flattenSchema(schema).flatMap(([key, f]) => {
    const v = getPath(config, key);
    return JSON.stringify(v) === JSON.stringify(f.default) ? [] : [`  ${key} = ${JSON.stringify(v)}`];
  });
  return rows.length ? rows.join('\n') : '  (all defaults)';
}

/** Writes the resolved config as `config.json` in the run directory; returns its path. */
export function saveResolvedConfig(runDir: string, config: Config): string {
  makeDirs(runDir);
  const path = join(runDir, 'config.json');
  onDisk('write', path, () => writeFileSync(path, JSON.stringify(config, null, 2) + '\n'));
  return path;
}

/** The configuration keys for `--help`: key, type, default, doc; with `only`, the keys under those sections and top-level names. */
export function configHelp(only?: readonly string[]): string {
  const lines = ['Configuration keys (set in a --config JSON file, or as --key=value; the command line wins):'];
  let section = '';
  const shown = (key: string) => !only || only.some((o) => key === o || key.startsWith(`${o}.`));
  for (const [key, f] of flattenSchema(schema)) {
    if (!shown(key)) continue;
    const top = key.includes('.') ? key.split('.')[0] : '';
    if (top !== section) {
      section = top;
      lines.push('', `  ${top}:`);
    }
    lines.push(`    --${key} <${typeName(f)}>  (default ${JSON.stringify(f.default)})`, `        ${f.doc}`);
  }
  return lines.join('\n');
}
