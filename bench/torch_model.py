"""PyTorch baseline for bench/model.ts: one measurement of the plain-PyTorch GPT-2 (bench/torch_gpt.py).

Reads a JSON spec on stdin:
  {"kind": "train" | "gen", "threads": 2, "seed": 1234,
   "model": {"layers": 4, "heads": 4, "hidden": 256, "vocab": 8192, "seq": 256, "batch": 8, "steps": 10},
   "gen": {"batch": 8, "prompt": 64, "new_tokens": 64, "reps": 3}}
and prints one JSON object (bench/torch_common.py's emit):
  train: forward + cross-entropy + backward + AdamW(lr 3e-4, betas 0.9/0.95, weight decay 0.1,
         eps 1e-8) on random tokens [batch, seq]; one warm-up step, then `steps` timed steps;
         tokens_per_s = batch * seq / mean step time (step_ms), as bench/model.ts times Quartet.
  gen:   greedy KV-cache generation, `batch` prompts of `prompt` random tokens, `new_tokens` new
         tokens; one warm-up generation of 4 tokens, then `reps` timed runs; tokens_per_s =
         batch * new_tokens / median run (total_ms).
Both also give peak_rss_mb, the peak resident memory of this process: bench/model.ts runs
each measurement in a fresh process. The caller sets OMP_NUM_THREADS (and the malloc
settings of bench/torch-python.ts) before torch is imported.

Run by hand (from the repository root):
  echo '{"kind":"train","threads":2,"seed":1234,"model":{"layers":4,"heads":4,"hidden":256,"vocab":8192,"seq":256,"batch":8,"steps":10},"gen":{"batch":8,"prompt":64,"new_tokens":64,"reps":3}}' \
    | OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/torch_model.py
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from torch_common import emit
from torch_gpt import GPT, generate, peak_rss_mb, setup_threads


def context_of(m, g):
    """Positions the model holds: as Quartet's model in bench/model.ts (at least 256, as GPT-2 configs of this size)."""
    return max(m["seq"], g["prompt"] + g["new_tokens"], 256)


def train(spec):
    m, threads = spec["model"], spec["threads"]
    torch.manual_seed(spec["seed"])
    model = GPT(m["layers"], m["heads"], m["hidden"], m["vocab"], context_of(m, spec["gen"])).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, eps=1e-8)
    B, T, steps = m["batch"], m["seq"], m["steps"]
    data = torch.randint(0, m["vocab"], (1 + steps, B, T + 1))
    times, cpus = [], []
    for s in range(1 + steps):
        ids, labels = data[s, :, :-1], data[s, :, 1:]
        c0, t0 = time.process_time(), time.perf_counter()
        loss = F.cross_entropy(model(ids).reshape(-1, m["vocab"]), labels.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if s > 0:  # the first step warms up (allocator, thread pool, AdamW state)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    step = sum(times) / len(times)
    emit("train", threads, min(times), statistics.median(times), min(cpus),
         kind="train", tokens_per_s=B * T / step, step_ms=1e3 * step, peak_rss_mb=peak_rss_mb(),
         params=sum(p.numel() for p in model.parameters()), loss_last=loss.item())


def gen(spec):
    m, g, threads = spec["model"], spec["gen"], spec["threads"]
    torch.manual_seed(spec["seed"])
    model = GPT(m["layers"], m["heads"], m["hidden"], m["vocab"], context_of(m, g)).eval()
    B, P, N = g["batch"], g["prompt"], g["new_tokens"]
    prompt = torch.randint(0, m["vocab"], (B, P))
    generate(model, prompt, 4)  # warm-up
    times, cpus = [], []
    for _ in range(g["reps"]):
        c0, t0 = time.process_time(), time.perf_counter()
        out = generate(model, prompt, N)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    total = statistics.median_low(times)  # the middle run, as bench/model.ts takes Quartet's
    emit("gen", threads, min(times), total, min(cpus),
         kind="gen", tokens_per_s=B * N / total, total_ms=1e3 * total, peak_rss_mb=peak_rss_mb(),
         checksum=int(out[:, P:].sum()))


def main():
    spec = json.load(sys.stdin)
    setup_threads(spec["threads"])
    {"train": train, "gen": gen}[spec["kind"]](spec)


if __name__ == "__main__":
    main()
