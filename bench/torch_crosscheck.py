"""Cross-check: do bench/torch_model.py and bench/torch_ppo.py time the same work as torch_ref.py?

torch_ref.py is the plain-PyTorch GPT-2 and PPO step the model and ppo benchmarks were first
compared with (a file kept outside the repository, beside the development checkout). The
benchmarks no longer need it; this script, run by hand, confirms that the project's own
baselines are the same work:
  1. same model: for each config, torch_ref's GPT and bench/torch_gpt.py's GPT have the same
     parameter shapes; with torch_ref's weights copied into ours, the logits (LM head) and
     values (value head) agree, and greedy KV-cache generation gives the same tokens;
  2. same arithmetic: the FLOPs of one training step (forward, cross-entropy, backward),
     counted by torch.utils.flop_counter, are equal;
  3. similar timings: torch_ref.py and bench/torch_model.py / bench/torch_ppo.py run
     alternately in fresh processes with the same thread environment; their figures and
     ratios are printed (on a shared machine expect a few per cent of noise, more when
     something else runs).

Usage, from the repository root (after `npm run bench -- setup`):
  .venv/bin/python bench/torch_crosscheck.py --ref PATH/TO/torch_ref.py [--config tiny,gpt2-small]
      [--bench train,gen,ppo] [--threads 2] [--repeat 1] [--no-timing]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_gpt import GPT, generate  # noqa: E402

# The shapes of bench/model.ts (CONFIGS, GEN) and bench/ppo.ts (SHAPE), which are torch_ref's.
CONFIGS = {
    "tiny": dict(layers=4, heads=4, hidden=256, vocab=8192, seq=256, batch=8, steps=10),
    "gpt2-small": dict(layers=12, heads=12, hidden=768, vocab=50257, seq=256, batch=4, steps=3),
}
GEN = dict(batch=8, prompt=64, new_tokens=64, reps=3)
TUNED_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def load_ref(path):
    spec = importlib.util.spec_from_file_location("torch_ref", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ref_to_ours(ref_state, layers):
    """torch_ref's parameter names -> bench/torch_gpt.py's."""
    names = {"wte.weight": "tokens.weight", "wpe.weight": "positions.weight", "ln_f.weight": "norm.weight",
             "ln_f.bias": "norm.bias", "v_head.weight": "value.weight"}
    block = {"ln_1": "norm1", "c_attn": "attn.qkv", "c_proj": "attn.out", "ln_2": "norm2", "c_fc": "up", "mlp_proj": "down"}
    for i in range(layers):
        for a, b in block.items():
            for p in ("weight", "bias"):
                names[f"h.{i}.{a}.{p}"] = f"blocks.{i}.{b}.{p}"
    return {names[k]: v for k, v in ref_state.items()}


def train_flops(model, ids, labels, vocab):
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        logits = model(ids)
        F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def same_model(ref, name):
    c = CONFIGS[name]
    RefGPT = ref.build(torch, nn, F)
    torch.manual_seed(0)
    ok = True
    for head in ("lm", "value"):
        theirs = RefGPT(c["layers"], c["heads"], c["hidden"], c["vocab"], 256, head)
        ours = GPT(c["layers"], c["heads"], c["hidden"], c["vocab"], 256, head)
        shapes_t = sorted(tuple(p.shape) for p in theirs.parameters())
        shapes_o = sorted(tuple(p.shape) for p in ours.parameters())
        ours.load_state_dict(ref_to_ours(theirs.state_dict(), c["layers"]))
        ids = torch.randint(0, c["vocab"], (2, 96))
        with torch.no_grad():
            diff = (theirs(ids) - ours(ids)).abs().max().item()
        line = {"config": name, "head": head, "same_parameter_shapes": shapes_t == shapes_o,
                "parameters": sum(p.numel() for p in ours.parameters()), "max_abs_diff": diff}
        ok &= shapes_t == shapes_o and diff < 1e-5
        if head == "lm":
            theirs.eval(), ours.eval()
            prompt = torch.randint(0, c["vocab"], (2, 16))
            cache = theirs.new_cache(2, 32)
            with torch.no_grad():  # torch_ref's greedy loop, written out (its generate() lives in its child())
                logits = theirs(prompt, cache, 0, last_only=True)[:, -1]
                toks = [prompt]
                for i in range(16):
                    nxt = logits.argmax(-1)
                    toks.append(nxt[:, None])
                    if i < 15:
                        logits = theirs(nxt[:, None], cache, 16 + i)[:, -1]
            line["same_greedy_tokens"] = bool(torch.equal(torch.cat(toks, 1), generate(ours, prompt, 16)))
            ok &= line["same_greedy_tokens"]
            theirs.train(), ours.train()
            B, T = c["batch"], c["seq"]
            x = torch.randint(0, c["vocab"], (B, T))
            y = torch.randint(0, c["vocab"], (B, T))
            line["train_step_gflop_ref"] = train_flops(theirs, x, y, c["vocab"]) / 1e9
            line["train_step_gflop_ours"] = train_flops(ours, x, y, c["vocab"]) / 1e9
            ok &= line["train_step_gflop_ref"] == line["train_step_gflop_ours"]
        print(json.dumps(line), flush=True)
    return ok


def child_env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.update(TUNED_ENV)
    return env


def run_ref(ref_path, threads, bench, config):
    out = subprocess.run([sys.executable, ref_path, "--threads", str(threads), "--bench", bench, "--config", config],
                         capture_output=True, text=True, check=True).stdout
    return next(json.loads(l) for l in out.splitlines() if l.startswith("{") and json.loads(l).get("bench") == bench)


def run_ours(script, spec, threads):
    out = subprocess.run([sys.executable, os.path.join(HERE, script)], input=json.dumps(spec), env=child_env(threads),
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def timings(ref_path, configs, benches, threads, repeat):
    rows = []
    for _ in range(repeat):
        for config in configs:
            for bench in benches:
                if bench in ("train", "gen"):
                    spec = {"kind": bench, "threads": threads, "seed": 1234, "model": CONFIGS[config], "gen": GEN}
                    theirs = run_ref(ref_path, threads, bench, config)
                    ours = run_ours("torch_model.py", spec, threads)
                    rows.append((f"{config} {bench} tokens/s", ours["tokens_per_s"], theirs["tokens_per_s"]))
                elif bench == "ppo" and config == "tiny":
                    c = CONFIGS["tiny"]
                    spec = {"threads": threads, "seed": 1234, "steps": 3,
                            "shape": dict(layers=c["layers"], heads=c["heads"], hidden=c["hidden"], vocab=c["vocab"],
                                          batch=GEN["batch"], prompt=GEN["prompt"], new_tokens=GEN["new_tokens"])}
                    theirs = run_ref(ref_path, threads, "ppo", "tiny")
                    ours = run_ours("torch_ppo.py", spec, threads)
                    for k in ("generate_ms", "total_ms"):
                        rows.append((f"tiny ppo step {k}", ours[k], theirs[k]))
    print(f"\n{'measurement':<32} {'bench/torch_*.py':>17} {'torch_ref.py':>13} {'ours/ref':>9}")
    for name, ours, theirs in rows:
        print(f"{name:<32} {ours:>17.1f} {theirs:>13.1f} {ours / theirs:>8.2f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ref", required=True, help="path of torch_ref.py")
    p.add_argument("--config", default="tiny")
    p.add_argument("--bench", default="train,gen,ppo")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="rounds of timings (the sides alternate)")
    p.add_argument("--no-timing", action="store_true", help="only the model and FLOP checks")
    a = p.parse_args()
    ref = load_ref(a.ref)
    configs = a.config.split(",")
    ok = all([same_model(ref, c) for c in configs])
    print(f"same model and FLOPs: {'yes' if ok else 'NO'}", flush=True)
    if not a.no_timing:
        timings(a.ref, configs, a.bench.split(","), a.threads, a.repeat)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
