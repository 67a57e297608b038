// How the benchmarks time a piece of work, the same way as their PyTorch
// baselines (bench/torch_common.py): one warm-up run, then runs until `reps` or,
// after `minRuns`, until `minSeconds` have passed. The best run is the figure,
// as the machine may be shared; the median is shown beside it, and the best
// process CPU time of a run, which time spent descheduled does not spoil (it
// counts every thread, so it means most with one thread).

export interface Timing {
  /** Seconds. */
  best: number;
  median: number;
  cpu: number;
}

export interface TimingOptions {
  reps: number;
  minSeconds: number;
  minRuns: number;
}

export function timeRuns(run: () => void, opts: TimingOptions): Timing {
  run(); // warm-up: first touch of outputs, thread pool start, packing buffers
  const times: number[] = [];
  let cpu = Infinity;
  const start = performance.now();
  while (times.length < opts.reps && (times.length < opts.minRuns || performance.now() - start < opts.minSeconds * 1000)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    run();
    times.push((performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { best: times[0], median: times[Math.floor(times.length / 2)], cpu };
}
