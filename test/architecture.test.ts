// The import boundaries of ARCHITECTURE.md §8, enforced: native/ knows
// tensors, not models; src/tensor knows ops, not layers; src/models knows
// layers, not processes; src/runtime knows processes and messages, not
// models; src/coordinator knows roles by their methods only.
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { repoRoot } from '../src/util/paths.js';

/** For each folder under src/, the src/ folders (or src/native.ts) it must not import. */
const forbidden: Record<string, string[]> = {
  tensor: ['models', 'training', 'runtime', 'coordinator', 'config', 'data'],
  models: ['training', 'runtime', 'coordinator', 'data'],
  training: ['runtime', 'coordinator', 'config', 'data'],
  runtime: ['native.ts', 'tensor', 'models', 'training', 'coordinator', 'data'],
  coordinator: ['native.ts', 'training'],
  config: ['native.ts', 'tensor', 'models', 'training', 'coordinator'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The first path segment under src/ that a relative import in `file` points at. */
function importedAreas(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
    const target = relative(join(repoRoot, 'src'), join(dirname(file), m[1]));
    if (target.startsWith('..')) continue;
    const first = target.split(/[\\/]/)[0];
    out.push(first === 'native.js' ? 'native.ts' : first);
  }
  return out;
}

for (const [area, banned] of Object.entries(forbidden)) {
  t.test(`src/${area} stays inside its boundary`, async (t) => {
    const files = sources(join(repoRoot, 'src', area));
    t.ok(files.length > 0, `src/${area} has sources`);
    const crossings = files.flatMap((f) =>
      importedAreas(f).filter((a) => banned.includes(a)).map((a) => `${relative(repoRoot, f)} imports src/${a}`));
    t.same(crossings, [], `no import from src/${area} into ${banned.join(', ')}`);
  });
}

t.test('only native/addon.cc sees napi', async (t) => {
  const dir = join(repoRoot, 'native');
  const users = readdirSync(dir)
    .filter((f) => /\.(cc|h)$/.test(f) && /#include\s*[<"]napi\.h[>"]/.test(readFileSync(join(dir, f), 'utf8')));
  t.same(users, ['addon.cc']);
});
