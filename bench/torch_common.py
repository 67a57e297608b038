"""What the PyTorch baselines of bench/ share: the timing loop and the output line.

Both time like the TypeScript side (bench/timing.ts): one warm-up run, then runs
until max_reps or, after min_runs, until min_seconds have passed; the best and
median wall times and the best process CPU time of a run.
"""
import json
import time


def time_runs(run, min_seconds, max_reps, min_runs):
    """(best, median, cpu) seconds of run() after one warm-up call."""
    run()  # warm-up: first touch of outputs, thread pool start
    times, cpu = [], float("inf")
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_runs or time.perf_counter() - start < min_seconds):
        c0 = time.process_time()
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    times.sort()
    return times[0], times[len(times) // 2], cpu


def emit(name, threads, best, median, cpu, **extra):
    """One result line, as bench/torch-python.ts's runTorchScript reads it."""
    print(json.dumps({"name": name, "threads": threads, "seconds": best, "median": median,
                      "cpu_seconds": cpu, **extra}), flush=True)
