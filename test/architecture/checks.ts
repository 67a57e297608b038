// The checks behind test/architecture.test.ts, as functions of a root folder
// so that the test can also run them on a small made-up tree and see each one
// fail (a check that cannot fail proves nothing).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** Every file under `dir` (relative to `root`, '/'-separated) whose name passes `keep`. */
export function filesUnder(root: string, dir: string, keep: (rel: string) => boolean): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  if (statSync(abs).isFile()) return keep(dir) ? [dir] : [];
  return readdirSync(abs).sort().flatMap((f) => {
    if (f === 'node_modules' || f === 'dist' || f === 'build') return [];
    return filesUnder(root, `${dir}/${f}`, keep);
  });
}

/**
 * The area a repository file belongs to: `src/<folder>` for the layers,
 * `src/native.ts` for the addon's declaration, else its top folder
 * (`actors`, `bench`, `test`, ...).
 */
export function areaOf(rel: string): string {
  const parts = rel.split('/');
  if (parts[0] !== 'src') return parts[0];
  if (parts.length === 2) return `src/${parts[1].replace(/\.js$/, '.ts')}`;
  return `src/${parts[1]}`;
}

/** The repository files (relative, '.ts' for '.js') that `rel` imports with a relative specifier, static or dynamic. */
export function importsOf(root: string, rel: string): string[] {
  const text = readFileSync(join(root, rel), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = relative(root, join(root, dirname(rel), m[1])).split(sep).join('/');
    out.push(target.replace(/\.js$/, '.ts'));
  }
  return out;
}

export interface ImportRule {
  /** Areas this area may import besides itself. */
  may: string[];
  why: string;
}

/** One import allowed across the table: a file (from) and the file or area it may reach. */
export interface ImportException {
  from: string;
  to: string;
  why: string;
}

/** Every import that the table does not allow: 'file imports target (area)'. Areas missing from the table are reported too. */
export function importViolations(root: string, table: Record<string, ImportRule>, exceptions: ImportException[], dirs: string[]): string[] {
  const out: string[] = [];
  for (const file of dirs.flatMap((d) => filesUnder(root, d, (f) => f.endsWith('.ts')))) {
    const from = areaOf(file);
    const rule = table[from];
    if (!rule) {
      out.push(`${file}: area ${from} has no row in the import table`);
      continue;
    }
    for (const target of importsOf(root, file)) {
      const to = areaOf(target);
      if (to === from || rule.may.includes(to)) continue;
      if (exceptions.some((e) => e.from === file && (e.to === target || e.to === to))) continue;
      out.push(`${file} imports ${target} (${from} may import ${rule.may.join(', ') || 'nothing'})`);
    }
  }
  return out;
}

export interface LineCap {
  /** Folders or files, relative to the root. */
  dirs: string[];
  /** File name endings checked. */
  ext: string[];
  max: number;
}

/** Files over their cap that the allow-list does not name, and allow-list entries that no longer apply. */
export function longFiles(root: string, caps: LineCap[], allowed: Record<string, string>): string[] {
  const out: string[] = [];
  const over = new Set<string>();
  for (const cap of caps) {
    for (const file of cap.dirs.flatMap((d) => filesUnder(root, d, (f) => cap.ext.some((e) => f.endsWith(e))))) {
      const lines = readFileSync(join(root, file), 'utf8').split('\n').length - 1;
      if (lines <= cap.max) continue;
      over.add(file);
      if (!(file in allowed)) out.push(`${file}: ${lines} lines, over the cap of ${cap.max}`);
    }
  }
  // A stale entry would let the file grow back unnoticed once it is fixed.
  for (const file of Object.keys(allowed)) if (!over.has(file)) out.push(`${file}: on the allow-list but not over its cap (remove the entry)`);
  return out;
}

/**
 * Absolute paths of a development machine: a home or work folder on Linux or
 * macOS, or a Windows drive. The lookbehind keeps out URLs (a home folder after
 * `https://host`) and relative paths (after `./` or `~/`); system paths used on purpose
 * (`/proc/`, `/tmp/`, `/usr/bin/python3`) are not in the list at all.
 */
export const MACHINE_PATH = /(?<![\w.:/~-])(?:\/work|\/root|\/home|\/Users)\/[\w.-]|(?<![\w])[A-Z]:\\{1,2}[\w]/;

const TEXT = /\.(ts|js|mjs|cjs|py|md|json|jsonl|sh|cc|h|cu|gyp|ya?ml|txt|toml|cfg)$|(^|\/)[^./]+$/;

/** 'file:line: text' for each line naming a machine path, unless the allow-list names the file and the line includes its text. */
export function machinePaths(root: string, dirs: string[], allowed: { file: string; text: string; why: string }[]): string[] {
  const out: string[] = [];
  for (const file of dirs.flatMap((d) => filesUnder(root, d, (f) => TEXT.test(f)))) {
    const text = readFileSync(join(root, file), 'utf8');
    if (text.includes('\0')) continue;
    text.split('\n').forEach((line, i) => {
      if (!MACHINE_PATH.test(line)) return;
      if (allowed.some((a) => a.file === file && line.includes(a.text))) return;
      out.push(`${file}:${i + 1}: ${line.trim().slice(0, 160)}`);
    });
  }
  return out;
}
