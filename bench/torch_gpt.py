"""The plain-PyTorch GPT-2 that bench/torch_model.py and bench/torch_ppo.py time.

GPT-2 as Quartet's engine computes it (src/models/): pre-LN blocks, learned positions,
GELU (tanh form), a tied LM head, and causal attention written out with matrix
products and a softmax (no fused scaled_dot_product_attention, so that both sides
do the same arithmetic), with an optional preallocated KV cache. head='value'
replaces the LM head with one scalar per position (critic, reward model).

Initialisation is GPT-2's: N(0, 0.02) weights, zero biases, N(0, 0.01) positions,
residual projections scaled by 1/sqrt(2 * layers). All of it is plain torch.nn; no
transformers library is needed.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, hidden, heads, layers, context):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        nn.init.normal_(self.qkv.weight, std=0.02)
        nn.init.normal_(self.out.weight, std=0.02 / math.sqrt(2 * layers))
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("allowed", torch.tril(torch.ones(context, context, dtype=torch.bool)), persistent=False)

    def forward(self, x, cache, start):
        """x [B, T, C] at positions start.. start+T-1; cache: (k, v) [B, H, context, C/H] or None."""
        B, T, C = x.shape
        hd = C // self.heads

        def split_heads(t):
            return t.view(B, T, self.heads, hd).transpose(1, 2)

        q, k, v = (split_heads(t) for t in self.qkv(x).split(C, dim=2))
        if cache is not None:
            k_all, v_all = cache
            k_all[:, :, start:start + T] = k
            v_all[:, :, start:start + T] = v
            k, v = k_all[:, :, :start + T], v_all[:, :, :start + T]
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if T > 1:  # a single new token sees every cached key: no mask
            scores = scores.masked_fill(~self.allowed[start:start + T, :k.shape[2]], float("-inf"))
        y = F.softmax(scores, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, hidden, heads, layers, context):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = Attention(hidden, heads, layers, context)
        self.norm2 = nn.LayerNorm(hidden)
        self.up = nn.Linear(hidden, 4 * hidden)
        self.down = nn.Linear(4 * hidden, hidden)
        nn.init.normal_(self.up.weight, std=0.02)
        nn.init.normal_(self.down.weight, std=0.02 / math.sqrt(2 * layers))
        nn.init.zeros_(self.up.bias)
        nn.init.zeros_(self.down.bias)

    def forward(self, x, cache=None, start=0):
        x = x + self.attn(self.norm1(x), cache, start)
        return x + self.down(F.gelu(self.up(self.norm2(x)), approximate="tanh"))


class GPT(nn.Module):
    """forward(ids [B, T]) -> logits [B, T, V] (head 'lm') or values [B, T] (head 'value')."""

    def __init__(self, layers, heads, hidden, vocab, context, head="lm"):
        super().__init__()
        self.layers, self.heads, self.hidden, self.vocab, self.context = layers, heads, hidden, vocab, context
        self.head = head
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(context, hidden)
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.positions.weight, std=0.01)
        self.blocks = nn.ModuleList(Block(hidden, heads, layers, context) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        if head == "value":
            self.value = nn.Linear(hidden, 1, bias=False)
            nn.init.normal_(self.value.weight, std=1.0 / math.sqrt(hidden + 1))

    def kv_cache(self, batch, length):
        hd = self.hidden // self.heads
        return [(torch.zeros(batch, self.heads, length, hd), torch.zeros(batch, self.heads, length, hd))
                for _ in self.blocks]

    def forward(self, ids, cache=None, start=0, last_only=False):
        T = ids.shape[1]
        x = self.tokens(ids) + self.positions(torch.arange(start, start + T))
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i], start)
        if last_only:
            x = x[:, -1:]
        x = self.norm(x)
        if self.head == "lm":
            return F.linear(x, self.tokens.weight)  # tied head
        return self.value(x).squeeze(-1)


@torch.no_grad()
def generate(model, prompt, new_tokens, sample=False, generator=None):
    """KV-cache decoding: prompt [B, P] -> tokens [B, P + new_tokens] (greedy, or sampled at T=1)."""
    B, P = prompt.shape
    cache = model.kv_cache(B, P + new_tokens)
    logits = model(prompt, cache, 0, last_only=True)[:, -1]
    out = [prompt]
    for i in range(new_tokens):
        if sample:
            token = torch.multinomial(F.softmax(logits, -1), 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(-1)
        out.append(token[:, None])
        if i + 1 < new_tokens:
            logits = model(token[:, None], cache, P + i)[:, -1]
    return torch.cat(out, 1)


def setup_threads(threads):
    """Thread counts: OMP_NUM_THREADS and friends are set by the caller before torch loads."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def peak_rss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
