"""PyTorch baseline for bench/ppo.ts: one DeepSpeed-Chat PPO step in plain PyTorch, in one process.

Reads a JSON spec on stdin:
  {"threads": 2, "seed": 1234, "steps": 3,
   "shape": {"layers": 4, "heads": 4, "hidden": 256, "vocab": 8192, "batch": 8, "prompt": 64, "new_tokens": 64}}
and prints one JSON object (bench/torch_common.py's emit) with the mean time in ms of each
phase over `steps` steps after one warm-up step:
  generate_ms                  the actor samples new_tokens tokens per prompt (T=1, KV cache)
  actor_logprobs_ms, ref_logprobs_ms, reward_score_ms, critic_values_ms
                               the four forward passes over the generated sequences
  rewards_gae_ms               -kl_ctl * (logp - ref_logp) plus the clipped score on the last
                               answer token, then GAE (gamma 1, lambda 0.95)
  actor_fwd_ms, actor_bwd_ms, actor_adamw_ms     clipped PPO policy loss (clip 0.2), AdamW lr 1e-5
  critic_fwd_ms, critic_bwd_ms, critic_adamw_ms  clipped value loss (clip 0.2), AdamW lr 5e-6
  total_ms                     the whole step
The four models are bench/torch_gpt.py's GPT: actor and reference with the LM head (the
reference a frozen copy of the actor), reward and critic with the value head (the critic
starts from the reward model, as in DeepSpeed-Chat). Prompts are random tokens and every
answer runs to new_tokens (no end-of-text, no padding), as bench/ppo.ts arranges for Quartet.

Run by hand (from the repository root):
  echo '{"threads":2,"seed":1234,"steps":3,"shape":{"layers":4,"heads":4,"hidden":256,"vocab":8192,"batch":8,"prompt":64,"new_tokens":64}}' \
    | OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/torch_ppo.py
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from torch_common import emit
from torch_gpt import GPT, generate, setup_threads

# DeepSpeed-Chat's PPO settings.
KL_CTL, CLIP_REWARD, CLIP_RANGE, CLIP_RANGE_VALUE, GAMMA, LAMBDA = 0.1, 5.0, 0.2, 0.2, 1.0, 0.95


def token_logprobs(logits, seq):
    """log p(seq[:, t+1] | seq[:, :t+1]) for every t: [B, L-1]."""
    return torch.gather(F.log_softmax(logits[:, :-1], -1), 2, seq[:, 1:].unsqueeze(-1)).squeeze(-1)


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum()


def advantages_and_returns(rewards, values, start):
    """GAE from position `start` (the last prompt token) to the end, as DeepSpeed-Chat."""
    last, out = 0.0, []
    L = rewards.shape[1]
    for t in range(L - 1, start - 1, -1):
        following = values[:, t + 1] if t + 1 < L else 0.0
        delta = rewards[:, t] + GAMMA * following - values[:, t]
        last = delta + GAMMA * LAMBDA * last
        out.append(last)
    advantages = torch.stack(out[::-1], dim=1)
    return advantages, advantages + values[:, start:]


def main():
    spec = json.load(sys.stdin)
    threads, s = spec["threads"], spec["shape"]
    setup_threads(threads)
    torch.manual_seed(spec["seed"])
    B, P, N = s["batch"], s["prompt"], s["new_tokens"]
    context = max(P + N, 256)

    def model(head):
        return GPT(s["layers"], s["heads"], s["hidden"], s["vocab"], context, head)

    actor, reference, reward, critic = model("lm"), model("lm"), model("value"), model("value")
    reference.load_state_dict(actor.state_dict())
    critic.load_state_dict(reward.state_dict())
    for frozen in (reference, reward):
        frozen.eval().requires_grad_(False)
    actor_opt = torch.optim.AdamW(actor.parameters(), lr=1e-5, betas=(0.9, 0.95), weight_decay=0.0)
    critic_opt = torch.optim.AdamW(critic.parameters(), lr=5e-6, betas=(0.9, 0.95), weight_decay=0.0)
    sampler = torch.Generator().manual_seed(spec["seed"])
    prompts = torch.randint(0, s["vocab"], (1 + spec["steps"], B, P))

    steps, cpus = [], []
    for step in range(1 + spec["steps"]):
        ms = {}
        cpu0 = time.process_time()
        clock = [time.perf_counter()]

        def lap(phase):
            now = time.perf_counter()
            ms[phase] = ms.get(phase, 0.0) + 1e3 * (now - clock[0])
            clock[0] = now

        # Generation.
        actor.eval()
        seq = generate(actor, prompts[step], N, sample=True, generator=sampler)
        actor.train()
        mask = torch.ones(B, seq.shape[1] - 1)  # every answer token counts: no padding, no end-of-text
        lap("generate")
        # Experience.
        with torch.no_grad():
            old_logp = token_logprobs(actor(seq), seq)
            lap("actor_logprobs")
            ref_logp = token_logprobs(reference(seq), seq)
            lap("ref_logprobs")
            score = reward(seq)[:, -1]
            lap("reward_score")
            old_values = critic(seq)[:, :-1]
            lap("critic_values")
            start = P - 1
            rewards = -KL_CTL * (old_logp - ref_logp)
            ends = start + mask[:, start:].sum(1).long()
            clipped = score.clamp(-CLIP_REWARD, CLIP_REWARD)
            for j in range(B):
                rewards[j, ends[j] - 1] += clipped[j]
            advantages, returns = advantages_and_returns(rewards, old_values, start)
            lap("rewards_gae")
        answer = mask[:, start:]
        # Actor: clipped policy loss.
        ratio = torch.exp(token_logprobs(actor(seq), seq)[:, start:] - old_logp[:, start:])
        policy_loss = masked_mean(torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - CLIP_RANGE, 1 + CLIP_RANGE)), answer)
        lap("actor_fwd")
        actor_opt.zero_grad(set_to_none=True)
        policy_loss.backward()
        lap("actor_bwd")
        actor_opt.step()
        lap("actor_adamw")
        # Critic: clipped value loss.
        values = critic(seq)[:, :-1][:, start:]
        before = old_values[:, start:]
        values_clipped = torch.clamp(values, before - CLIP_RANGE_VALUE, before + CLIP_RANGE_VALUE)
        value_loss = 0.5 * masked_mean(torch.max((values - returns) ** 2, (values_clipped - returns) ** 2), answer)
        lap("critic_fwd")
        critic_opt.zero_grad(set_to_none=True)
        value_loss.backward()
        lap("critic_bwd")
        critic_opt.step()
        lap("critic_adamw")
        ms["total"] = sum(ms.values())
        if step > 0:  # the first step warms up
            steps.append(ms)
            cpus.append(time.process_time() - cpu0)

    mean = {k + "_ms": sum(m[k] for m in steps) / len(steps) for k in steps[0]}
    totals = [m["total"] / 1e3 for m in steps]
    emit("ppo step", threads, min(totals), statistics.median(totals), min(cpus),
         kind="ppo", timed_steps=len(steps), **mean, samples_per_s=B / (mean["total_ms"] / 1e3),
         policy_loss=policy_loss.item(), value_loss=value_loss.item(), reward_mean=score.mean().item())


if __name__ == "__main__":
    main()
