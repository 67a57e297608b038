// Disk errors that say what happened: which path, what was being done, by
// whom (the role, where known), and the real errno in words. Node's recursive
// mkdir hides the errno (on a read-only file system it says ENOENT) and loops
// forever under /proc, so directories are made here one level at a time,
// from the nearest existing ancestor down: at most one mkdir per missing
// path component.
import { mkdirSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const WORDS: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
};

/** 'EROFS (read-only file system)'; the error's message when it has no errno code. */
export function errnoWords(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return err instanceof Error ? err.message : String(err);
  return `${code} (${WORDS[code] ?? (err as Error).message})`;
}

/** A failed disk operation, with its errno code and path kept for callers that tell cases apart. */
export class DiskError extends Error {
  constructor(message: string, readonly code: string | undefined, readonly path: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'DiskError';
  }
}

/**
 * "<who>: cannot <doing> <path>: ENOSPC (no space left on device)[; note]".
 * A DiskError passes through, with `who` put in front when it lacks one.
 */
export function diskError(err: unknown, doing: string, path: string, who?: string, note?: string): DiskError {
  if (err instanceof DiskError) {
    return who && !err.message.startsWith(`${who}: `) ? new DiskError(`${who}: ${err.message}`, err.code, err.path, { cause: err }) : err;
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  const msg = `${who ? `${who}: ` : ''}cannot ${doing} ${path}: ${errnoWords(err)}${note ? `; ${note}` : ''}`;
  return new DiskError(msg, code, path, { cause: err });
}

/** Runs a disk operation, turning its failure into a DiskError that names `path` (and `who`). */
export function onDisk<T>(doing: string, path: string, fn: () => T, who?: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DiskError || typeof (err as NodeJS.ErrnoException)?.code === 'string') throw diskError(err, doing, path, who);
    throw err;
  }
}

function statOrNull(path: string, who?: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw diskError(err, 'look at', path, who);
  }
}

/** mkdir -p that reports the real errno and cannot loop: one mkdir per missing component. */
export function makeDirs(dir: string, who?: string): void {
  const abs = resolve(dir);
  const missing: string[] = [];
  let at = abs;
  let st = statOrNull(at, who);
  while (st === null) {
    missing.push(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
    st = statOrNull(at, who);
  }
  if (st && !st.isDirectory()) {
    throw new DiskError(`${who ? `${who}: ` : ''}cannot create directory ${abs}: ${at} is not a directory (ENOTDIR)`, 'ENOTDIR', at);
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statOrNull(d, who)?.isDirectory()) continue;
      // ENOENT although the parent exists: a file system that takes no new entries (/proc, /sys).
      const note = code === 'ENOENT' ? `${dirname(d)} exists, but its file system does not allow new directories` : undefined;
      throw diskError(err, 'create directory', d, who, note);
    }
  }
}

/**
 * Checks, before a run starts, that `dir` can hold its outputs: creates it
 * (and its parents) and writes and removes a probe file. Errors name the
 * path and the errno in words.
 */
export function ensureWritableDir(dir: string, what = 'output directory'): string {
  const abs = resolve(dir);
  try {
    makeDirs(abs);
    const probe = join(abs, `.quartet-probe-${process.pid}`);
    try {
      writeFileSync(probe, 'quartet checks that this directory is writable\n');
    } catch (err) {
      throw diskError(err, 'write into', abs);
    } finally {
      try {
        unlinkSync(probe);
      } catch {
        // Nothing was written.
      }
    }
  } catch (err) {
    if (err instanceof DiskError) throw new DiskError(`${what} ${abs} is not usable: ${err.message}`, err.code, err.path, { cause: err });
    throw err;
  }
  return abs;
}
