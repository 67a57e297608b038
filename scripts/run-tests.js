#!/usr/bin/env node
// Runs the tap suite over the compiled tests and ends with a plain
// "N passed, N failed" line, which CI reads for a test count.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
// Only *.test.js files are tests (helpers are compiled beside them); dist/ is
// git-ignored, which tap's own file search skips, so the list is made here.
function testFiles(path) {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path).sort().flatMap((f) => {
    const p = join(path, f);
    return statSync(p).isDirectory() ? testFiles(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const files = (args.length ? args : ['dist/test']).flatMap(testFiles);
const child = spawn(process.execPath, ['node_modules/tap/dist/esm/run.mjs', ...files], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let tail = '';
child.stdout.on('data', (b) => {
  process.stdout.write(b);
  tail = (tail + b.toString()).slice(-4000);
});
child.on('close', (code) => {
  const m = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/.exec(tail);
  if (m) {
    const total = +m[1], pass = +m[2], fail = m[3] ? +m[3] : total - pass - (m[4] ? +m[4] : 0);
    console.log(`${pass} passed, ${fail} failed` + (m[4] ? `, ${m[4]} skipped` : ''));
  }
  process.exit(code ?? 1);
});
