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

import torch

from torch_common import emit, time_runs


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
            best, median, cpu = time_runs(lambda: torch.mm(a, b, out=out), spec["min_seconds"], spec["max_reps"], 2)
            emit(p["name"], threads, best, median, cpu, gflops=2.0 * M * N * K / best * 1e-9)


if __name__ == "__main__":
    main()
