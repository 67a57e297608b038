// `quartet report RUN_DIR` writes report.html and report.svg into a copy of
// the fixture run, prints the page's path, reports a bad metrics line as
// file:line on stderr, and explains itself with --help or without a RUN_DIR.
import t from 'tap';
import { execFile } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/util/paths.js';

const run = promisify(execFile);
const quartet = (...args: string[]) => run(process.execPath, [join(repoRoot, 'bin', 'quartet.js'), 'report', ...args], { cwd: repoRoot });

const root = mkdtempSync(join(tmpdir(), 'quartet-report-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('writes report.html and report.svg and prints the path; a bad line is named by file:line', async (t) => {
  const dir = join(root, 'run');
  cpSync(join(repoRoot, 'test/fixtures/demo/report-run'), dir, { recursive: true });
  const clean = await quartet(dir, '--title', 'Fixture run');
  t.equal(clean.stdout.trim(), join(dir, 'report.html'));
  // The fixture holds three bad lines on purpose.
  t.match(clean.stderr, /^3 problem\(s\)/);
  t.match(clean.stderr, /metrics\.jsonl:12: not valid JSON/);
  t.match(readFileSync(join(dir, 'report.html'), 'utf8'), /<title>[^<]*Fixture run/);
  t.ok(existsSync(join(dir, 'report.svg')));

  const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trimEnd().split('\n').length;
  appendFileSync(join(dir, 'metrics.jsonl'), '{"phase":"ppo","step":\n');
  const bad = await quartet(dir);
  t.equal(bad.stdout.trim(), join(dir, 'report.html'));
  t.match(bad.stderr, new RegExp(`^4 problem\\(s\\)[\\s\\S]*metrics\\.jsonl:${lines + 1}: not valid JSON`));
});

t.test('--help, and a usage error without RUN_DIR or for a missing one', async (t) => {
  const help = await quartet('--help');
  t.match(help.stdout, /Usage: npx quartet report RUN_DIR/);
  const fails = async (args: string[]): Promise<{ code: number; stderr: string }> => {
    try {
      await quartet(...args);
    } catch (err) {
      return err as { code: number; stderr: string };
    }
    throw new Error(`quartet report ${args.join(' ')} should have failed`);
  };
  const none = await fails([]);
  t.equal(none.code, 2);
  t.match(none.stderr, /give exactly one RUN_DIR, got 0/);
  const missing = await fails([join(root, 'nowhere')]);
  t.not(missing.code, 0);
  t.match(missing.stderr, /run directory .*nowhere does not exist/);
});
