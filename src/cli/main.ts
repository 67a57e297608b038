// The `quartet` command line: a table of subcommands, each in its own file
// under commands/ and loaded only when used, so `quartet --help` stays fast.
export interface Command {
  /** One line for `quartet --help`. */
  summary: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

// name -> [file under commands/, exported name]
const table: Record<string, [string, string]> = {
  'train': ['train.js', 'trainCommand'],
  'sft': ['train.js', 'sftCommand'],
  'rm': ['train.js', 'rmCommand'],
  'ppo': ['train.js', 'ppoCommand'],
  'dpo': ['train.js', 'dpoCommand'],
  'chat': ['chat.js', 'default'],
  'eval': ['eval.js', 'default'],
  'generate': ['generate.js', 'default'],
  'init-model': ['init-model.js', 'default'],
  'node': ['node.js', 'default'],
  'report': ['report.js', 'default'],
};

const commands: Record<string, () => Promise<Command>> = Object.fromEntries(
  Object.entries(table).map(([name, [file, exported]]) => [
    name,
    async () => (await import(`./commands/${file}`))[exported] as Command,
  ]),
);

// Benchmarks are `npm run bench` (bench/), not a subcommand of the installed tool.
async function available(): Promise<[string, Command][]> {
  const out: [string, Command][] = [];
  for (const [name, load] of Object.entries(commands)) out.push([name, await load()]);
  return out;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = (await available()).map(([n, c]) => `  ${n.padEnd(12)} ${c.summary}`);
    console.log(`Usage: npx quartet <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`npx quartet <command> --help\` for a command's options.`);
    return 0;
  }
  if (name === '--version') {
    const { readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { repoRoot } = await import('../util/paths.js');
    console.log(JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).version);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`quartet: unknown command '${name}'. Run \`npx quartet --help\` for the list.`);
    return 2;
  }
  return (await load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    console.error(`quartet: ${err instanceof Error ? err.message : String(err)}`);
    if (process.env.QUARTET_DEBUG) console.error(err);
    process.exitCode = 1;
  },
);
