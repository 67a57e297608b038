// Small file systems for disk-error tests: a tmpfs of a given size (ENOSPC)
// or mounted read-only (EROFS). Mounting needs root; where it fails, a test
// is skipped with the reason, except in CI (CI=true), where it fails: CI runs
// as root, so a failed mount there is a broken test, not a missing privilege.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { Test } from 'tap';

/** Mounts a tmpfs at `dir` (created); false (after skipping or failing `t`) when it cannot. Unmounted at teardown. */
export function mountTmpfs(t: Test, dir: string, opts: { size: string; readOnly?: boolean }): boolean {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.size}${opts.readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'pipe', timeout: 10_000 });
  } catch (err) {
    const why = `cannot mount a tmpfs at ${dir} (needs root): ${((err as { stderr?: Buffer }).stderr?.toString() || (err as Error).message).trim()}`;
    if (process.env.CI === 'true') t.fail(why);
    else t.pass('tmpfs', { skip: why });
    return false;
  }
  t.teardown(() => {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe', timeout: 10_000 });
    } catch {
      // Already gone with its parent's cleanup.
    }
  });
  return true;
}
