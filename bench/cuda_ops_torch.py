"""The CUDA ops of native/cuda/ beside PyTorch on the same GPU, at GPT-2-small shapes.

    python3 bench/cuda_ops_torch.py --ours OURS.tsv [--json OUT.json]

OURS.tsv is what `native/cuda/check --bench OURS.tsv` wrote (name<TAB>median ms). This
script times the PyTorch op each name stands for, the same way (torch.cuda.Event around
each call, median of 20 after 3 warm-ups, fresh random data, fp32 unless the name says
bf16; TF32 off, as ours), and prints one row per op: ours, torch, and torch / ours
(above 1: ours is faster). Backward rows time torch.autograd.grad over a retained graph,
so they hold the backward kernels only, as ours do. Run by native/cuda/run-on-device.sh.
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

B, T, C, V, H, HS = 8, 1024, 768, 50257, 12, 64
N = B * T


def timed(fn, reps=20, warm=3):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ms.append(a.elapsed_time(b))
    ms.sort()
    return ms[len(ms) // 2]


def grad_fn(out, inputs, g):
    return lambda: torch.autograd.grad(out, inputs, g, retain_graph=True)


def cases():
    dev = 'cuda'
    r = {}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    x = torch.randn(N, C, device=dev)
    w = torch.randn(V, C, device=dev) * 0.02
    wfc = w[: 4 * C].contiguous()
    r['gemm_f32_fc'] = lambda: x @ wfc.t()
    r['gemm_f32_lmhead'] = lambda: x @ w.t()
    xb, wb, wfcb = x.bfloat16(), w.bfloat16(), wfc.bfloat16()
    r['gemm_bf16_fc'] = lambda: xb @ wfcb.t()
    r['gemm_bf16_lmhead'] = lambda: xb @ wb.t()

    xl = torch.randn(N, C, device=dev, requires_grad=True)
    lw = torch.randn(C, device=dev, requires_grad=True)
    lb = torch.randn(C, device=dev, requires_grad=True)
    r['layernorm_fwd'] = lambda: F.layer_norm(xl, (C,), lw, lb, 1e-5)
    y = F.layer_norm(xl, (C,), lw, lb, 1e-5)
    r['layernorm_bwd'] = grad_fn(y, (xl, lw, lb), torch.randn_like(y))
    r['rmsnorm_fwd'] = lambda: F.rms_norm(xl, (C,), lw, 1e-6)

    xg = torch.randn(N, 4 * C, device=dev, requires_grad=True)
    r['gelu_fwd'] = lambda: F.gelu(xg, approximate='tanh')
    yg = F.gelu(xg, approximate='tanh')
    r['gelu_bwd'] = grad_fn(yg, (xg,), torch.randn_like(yg))

    P = 124439808
    p = torch.nn.Parameter(torch.randn(P, device=dev) * 0.02)
    p.grad = torch.randn(P, device=dev) * 0.01
    opt = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
    r['adamw_124M'] = opt.step
    opt2 = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=True)
    r['adamw_124M (torch foreach)'] = opt2.step

    logits = (torch.randn(N, V, device=dev) * 2).requires_grad_(True)
    labels = torch.randint(0, V, (N, 1), device=dev)
    r['logprobs_fwd'] = lambda: torch.log_softmax(logits, -1).gather(-1, labels)
    lp = torch.log_softmax(logits, -1).gather(-1, labels)
    r['logprobs_bwd'] = grad_fn(lp, (logits,), torch.randn_like(lp))

    table = (torch.randn(V, C, device=dev) * 0.02).requires_grad_(True)
    idx = torch.randint(0, V, (N,), device=dev)
    r['embedding_fwd'] = lambda: F.embedding(idx, table)
    e = F.embedding(idx, table)
    r['embedding_bwd'] = grad_fn(e, (table,), torch.randn_like(e))

    for t in (256, 1024):
        for dt, tag in ((torch.float32, ''), (torch.bfloat16, ' (torch bf16)')):
            q, k, v = (torch.randn(B, H, t, HS, device=dev, dtype=dt, requires_grad=True) for _ in range(3))
            r[f'attn_fwd_T{t}{tag}'] = (lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            r[f'attn_bwd_T{t}{tag}'] = grad_fn(o, (q, k, v), torch.randn_like(o))
    for bb in (8, 64):
        q = torch.randn(bb, H, 1, HS, device=dev)
        k, v = (torch.randn(bb, H, 1024, HS, device=dev) for _ in range(2))
        r[f'attn_decode_B{bb}_T1024'] = (lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v))
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--ours', required=True)
    ap.add_argument('--json')
    a = ap.parse_args()
    ours = {}
    try:
        for line in open(a.ours):
            name, ms = line.rstrip('\n').split('\t')
            ours[name] = float(ms)
    except OSError as e:
        print(f'no figures of ours: {e}', file=sys.stderr)
    print(f'torch {torch.__version__}, {torch.cuda.get_device_name(0)}')
    rows = []
    for name, fn in cases().items():
        try:
            t = timed(fn)
        except Exception as e:  # an op missing in this torch: say so, go on
            print(f'{name}: torch failed: {e}')
            continue
        o = ours.get(name)
        rows.append({'op': name, 'ours_ms': o, 'torch_ms': t, 'torch_over_ours': (t / o) if o else None})
        torch.cuda.empty_cache()
    print(f"{'op':34s} {'ours ms':>10s} {'torch ms':>10s} {'torch/ours':>10s}")
    for row in rows:
        o = f"{row['ours_ms']:.4f}" if row['ours_ms'] else '-'
        ratio = f"{row['torch_over_ours']:.2f}x" if row['torch_over_ours'] else ''
        print(f"{row['op']:34s} {o:>10s} {row['torch_ms']:10.4f} {ratio:>10s}")
    if a.json:
        json.dump(rows, open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
