// Paths that do not depend on whether code runs from src/ (TypeScript) or
// dist/ (compiled): everything is resolved from the repository root.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('quartet: cannot find the repository root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The repository root (the folder holding package.json and binding.gyp). */
export const repoRoot = findRoot();
/** Compiled JavaScript lives under dist/ with the same layout as the sources. */
export const distRoot = join(repoRoot, 'dist');
/** Resolve a compiled module of the project, e.g. distPath('actors/actor.js'). */
export function distPath(rel: string): string {
  return join(distRoot, rel);
}
