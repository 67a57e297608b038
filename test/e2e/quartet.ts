// Running `quartet` as a user does, from tests: a child process whose output
// is collected, killed at teardown if still running, and optionally sent a
// signal once its output matches (to cut a run short mid-step).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Test } from 'tap';
import { repoRoot } from '../../src/util/paths.js';

export interface QuartetRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function quartet(t: Test, args: string[], opts: { timeoutMs?: number; killOn?: RegExp; killSignal?: NodeJS.Signals; input?: string } = {}): Promise<QuartetRun> {
  const child: ChildProcess = spawn(process.execPath, [join(repoRoot, 'bin', 'quartet.js'), ...args], { cwd: repoRoot, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  if (opts.input !== undefined) child.stdin!.end(opts.input);
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '', stderr = '';
  let signalled = false;
  child.stdout!.on('data', (b: Buffer) => {
    stdout += b.toString();
    if (opts.killOn && !signalled && opts.killOn.test(stdout) && child.exitCode === null) {
      signalled = true;
      child.kill(opts.killSignal ?? 'SIGKILL');
    }
  });
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 180_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
