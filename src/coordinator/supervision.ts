// The runtime options of a training step that come from the config's
// `runtime` section (heartbeat timeout, deadlines, the replay log's memory,
// chaos faults) and reward.timeoutMs (the deadline of `score`), and the supervision events the runtime reports, written to
// metrics.jsonl beside the step figures: {"phase", "step" (the last step
// logged before it), "event", "role", "replica", "seconds", ...}.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { Config, StepName } from '../config/defaults.js';
import type { RuntimeEvent, RuntimeOptions } from '../runtime/index.js';

/** `scoreTimeoutMs`: reward.timeoutMs, the deadline of `score` unless runtime.deadlines names it. */
export function supervisionOptions(runtime: Config['runtime'], step: StepName, metricsPath: string, scoreTimeoutMs?: number): Partial<RuntimeOptions> {
  const deadlines: Record<string, number> = scoreTimeoutMs ? { score: scoreTimeoutMs } : {};
  for (const d of runtime.deadlines) {
    const [method, seconds] = d.split('=');
    deadlines[method] = Number(seconds) * 1000;
  }
  return {
    peerTimeoutMs: runtime.heartbeatTimeoutMs,
    deadlines,
    replayLogBytes: runtime.replayLogMb * 1024 * 1024,
    faults: [...runtime.faults],
    onEvent: (e) => appendEvent(metricsPath, step, e),
  };
}

function appendEvent(path: string, phase: StepName, e: RuntimeEvent): void {
  const line = { phase, step: lastStep(path, phase), time: new Date().toISOString(), ...e };
  appendFileSync(path, JSON.stringify(line) + '\n');
}

/** The last step of `phase` in metrics.jsonl so far (events are rare: reading the file is fine). */
function lastStep(path: string, phase: StepName): number {
  if (!existsSync(path)) return 0;
  let step = 0;
  for (const l of readFileSync(path, 'utf8').split('\n')) {
    if (!l.includes(`"phase":"${phase}"`)) continue;
    try {
      const r = JSON.parse(l) as { step?: unknown; event?: unknown };
      if (r.event === undefined && typeof r.step === 'number') step = r.step;
    } catch { /* a torn last line */ }
  }
  return step;
}
