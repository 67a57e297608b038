// `npm run bench -- <name> [--json] [args]`: runs one benchmark (or all).
// Each benchmark lives in its own file and exports `run(opts)`.
import type { BenchOptions } from './report.js';

const benches: Record<string, string> = {
  engine: './engine.js',
  kernels: './kernels.js',
  model: './model.js',
  runtime: './runtime.js',
  ppo: './ppo.js',
  recovery: './recovery.js',
};

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const rest = argv.filter((a) => a !== '--json');
  const name = rest[0] && !rest[0].startsWith('-') ? rest.shift()! : 'all';
  if (name === '--help' || name === 'help') {
    console.log(`Usage: npm run bench -- <${Object.keys(benches).join('|')}|all> [--json]`);
    return 0;
  }
  const names = name === 'all' ? Object.keys(benches) : [name];
  for (const n of names) {
    const file = benches[n];
    if (!file) {
      console.error(`bench: unknown benchmark '${n}' (have: ${Object.keys(benches).join(', ')})`);
      return 2;
    }
    const mod = (await import(file)) as { run(opts: BenchOptions): Promise<void> };
    await mod.run({ json, args: rest });
  }
  return 0;
}

main().then((c) => { process.exitCode = c; }, (e) => { console.error(e); process.exitCode = 1; });
