// The command form README and the program print, `npx quartet ...`, works from
// the clone: npx finds this package's own bin (not npm's help), and every
// command README names exists and answers --help.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/util/paths.js';

const run = promisify(execFile);

t.test('npx quartet --help shows Quartet\'s help, from the repository root', async (t) => {
  const { stdout } = await run('npx', ['quartet', '--help'], { cwd: repoRoot, timeout: 60_000 });
  t.match(stdout, /^Usage: npx quartet <command> \[options\]/);
  t.match(stdout, /chat +Talk with a model folder/);
});

t.test('every `npx quartet <command>` README names is a command with --help', async (t) => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const named = new Set([...readme.matchAll(/npx quartet ([a-z][a-z-]*)/g)].map((m) => m[1]));
  t.ok(named.has('chat') && named.has('train'), `README names ${[...named].join(', ')}`);
  for (const name of named) {
    const args = [name, '--help'];
    const { stdout } = await run(process.execPath, [join(repoRoot, 'bin', 'quartet.js'), ...args], { cwd: repoRoot, timeout: 60_000 });
    t.match(stdout, new RegExp(`Usage: npx quartet ${name}`), `npx quartet ${name} --help`);
  }
  t.notMatch(readme, /(^|[^x] )quartet (train|chat|sft|rm|ppo|eval|node|report) /m, 'no bare `quartet <command>` that would not be on PATH');
});
