// One log per role replica: <runDir>/logs/<role>-<replica>.log (kept across
// restarts), the last lines in memory for error messages, and optionally
// each line echoed to the coordinator's output as `[role/replica] line`.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const KEEP = 30;

export class RoleLog {
  readonly file: string;
  private readonly last: string[] = [];
  private fd: number | null;

  constructor(logDir: string, readonly role: string, readonly replica: number, private readonly echo: ((line: string) => void) | null) {
    mkdirSync(logDir, { recursive: true });
    this.file = join(logDir, `${role}-${replica}.log`);
    this.fd = openSync(this.file, 'a');
  }

  write(line: string): void {
    // Synchronous writes: a role's last words must be on disk before its exit is reported.
    if (this.fd !== null) writeSync(this.fd, line + '\n');
    this.last.push(line);
    if (this.last.length > KEEP) this.last.shift();
    this.echo?.(`[${this.role}/${this.replica}] ${line}`);
  }

  /** A line from the supervisor itself (spawn, exit, restart), marked as such. */
  note(line: string): void {
    this.write(`-- quartet: ${line}`);
  }

  lastLines(n = 10): string[] {
    return this.last.slice(-n);
  }

  /** Lines after close are kept in memory and echoed, not written. */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
