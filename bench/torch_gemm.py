"""PyTorch baseline for bench/engine.ts: times the same matrix products in torch.

Reads a JSON spec on stdin:
  {"threads": [1, 2], "min_seconds": 1.0, "max_reps": 5,
   "products": [{"name": ..., "M": .., "N": .., "K": .., "transA": bool, "transB": bool}, ...]}
and prints one JSON object per product and thread count:
  {"name": ..., "threads": 1, "seconds": best, "median": median, "cpu_seconds": best process
   CPU time of a run, "gflops": ...}
Transposed operands are transposed views, as torch's autograd passes them to its
BLAS (no copies), so the products are the ones a torch training step runs.
"""
import json
import sys
import time

import torch


def time_product(a, b, out, min_seconds, max_reps):
    torch.mm(a, b, out=out)  # warm-up: first-touch of out, BLAS thread start
    times, cpu = [], float("inf")
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < 2 or time.perf_counter() - start < min_seconds):
        c0 = time.process_time()
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    times.sort()
    return times[0], times[len(times) // 2], cpu


def main():
    spec = json.load(sys.stdin)
    torch.manual_seed(0)
    for threads in spec["threads"]:
        torch.set_num_threads(threads)
        for p in spec["products"]:
            M, N, K = p["M"], p["N"], p["K"]
            # Stored as the engine stores them; op() is a view.
            a = torch.rand(K, M) if p["transA"] else torch.rand(M, K)
            b = torch.rand(N, K) if p["transB"] else torch.rand(K, N)
            a = a.t() if p["transA"] else a
            b = b.t() if p["transB"] else b
            out = torch.empty(M, N)
            best, median, cpu = time_product(a, b, out, spec["min_seconds"], spec["max_reps"])
            print(json.dumps({"name": p["name"], "threads": threads, "seconds": best, "median": median,
                              "cpu_seconds": cpu, "gflops": 2.0 * M * N * K / best * 1e-9}), flush=True)


if __name__ == "__main__":
    main()
