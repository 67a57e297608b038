// Faults on purpose, for chaos runs and the recovery tests: a role process
// is sent a signal right before its Nth call of a method (it dies idle) or a
// given number of ms after that call was sent (it dies or stops while it
// computes). The supervisor must then bring the role back with its state, and
// the run must end exactly as an undisturbed one.
//
//   'critic/0:values:2:SIGKILL'       kill -9 just before the 2nd `values` call
//   'actor/0:generate:3:SIGSTOP:40'   stop the actor 40 ms into its 3rd `generate`
import type { Replica } from './records.js';

export interface Fault {
  role: string;
  replica: number;
  method: string;
  /** Which call of that method to that replica (1-based, retries and replays not counted). */
  call: number;
  signal: 'SIGKILL' | 'SIGSTOP' | 'SIGTERM';
  /** ms after sending; null: just before sending. */
  afterMs: number | null;
}

const FORM = /^([\w-]+)\/(\d+):(\w+):(\d+):(SIGKILL|SIGSTOP|SIGTERM)(?::(\d+))?$/;

export function parseFault(s: string): Fault {
  const m = FORM.exec(s);
  if (!m) throw new Error(`runtime fault '${s}' must look like ROLE/REPLICA:METHOD:N:SIGKILL|SIGSTOP|SIGTERM[:MS_AFTER_SENDING], e.g. 'critic/0:train_value:3:SIGKILL:20'`);
  const call = Number(m[4]);
  if (call < 1) throw new Error(`runtime fault '${s}': calls count from 1`);
  return { role: m[1], replica: Number(m[2]), method: m[3], call, signal: m[5] as Fault['signal'], afterMs: m[6] === undefined ? null : Number(m[6]) };
}

export class FaultInjector {
  private readonly counts = new Map<string, number>();

  constructor(private readonly faults: readonly Fault[], private readonly note: (line: string) => void) {}

  /** Called as a call is sent to the replica's process; returns the wait before it is sent, if a fault fires then. */
  onSend(rep: Replica, method: string): void {
    if (this.faults.length === 0) return;
    const key = `${rep.plan.role}/${rep.plan.replica}:${method}`;
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    for (const f of this.faults) {
      if (f.role !== rep.plan.role || f.replica !== rep.plan.replica || f.method !== method || f.call !== n) continue;
      const pid = rep.pid;
      const fire = () => {
        this.note(`fault: ${f.signal} to ${key} call ${n} (pid ${pid}${f.afterMs === null ? ', before it was sent' : `, ${f.afterMs} ms after it was sent`})`);
        try {
          process.kill(pid, f.signal);
        } catch { /* already gone */ }
      };
      if (f.afterMs === null) fire();
      else setTimeout(fire, f.afterMs);
    }
  }
}
