"""PyTorch baseline for bench/kernels.ts: times the torch ops a torch training step
runs for the same work as each native kernel.

Reads a JSON spec on stdin:
  {"threads": [1, 2], "min_seconds": 0.3, "max_reps": 7,
   "cases": [{"name": ..., "kind": ..., "dims": {...}, "bytes": ...}, ...]}
and prints one JSON object per case and thread count:
  {"name": ..., "threads": 1, "seconds": best, "median": median, "cpu_seconds": best process CPU time}

What each kind is compared with (the ops autograd calls, not a Python composition):
  layerNorm: aten.native_layer_norm / native_layer_norm_backward; gelu, silu: aten.gelu,
  gelu_backward, silu; add, bias add: torch.add; bias grad: sum over rows; softmax:
  aten._softmax / _softmax_backward_data; logprobs forward: log_softmax + gather (what
  torch materialises for per-token log-probs); logprobs backward: the gather's backward
  (zeros + scatter) then _log_softmax_backward_data; embedding: aten.embedding /
  embedding_dense_backward; permute: permute().contiguous(); adamw: torch.optim.AdamW with
  its CPU default (the single-tensor path) and also fused=True; grad norm: the squared
  2-norm (torch.linalg.vector_norm, as clip_grad_norm_).
"""
import json
import sys

import torch

from torch_common import emit, time_runs

aten = torch.ops.aten


def prepare(kind, d):
    if kind in ('layerNormForward', 'layerNormBackward'):
        x, w, b = torch.randn(d['N'], d['C']), torch.randn(d['C']), torch.randn(d['C'])
        if kind == 'layerNormForward':
            return lambda: aten.native_layer_norm(x, [d['C']], w, b, 1e-5)
        _, mean, rstd = aten.native_layer_norm(x, [d['C']], w, b, 1e-5)
        dout = torch.randn_like(x)
        return lambda: aten.native_layer_norm_backward(dout, x, [d['C']], mean, rstd, w, b, [True, True, True])
    if kind in ('geluTanh', 'geluErf', 'silu'):
        x = torch.randn(d['n']) * 4
        if kind == 'silu':
            return lambda: aten.silu(x)
        approximate = 'tanh' if kind == 'geluTanh' else 'none'
        return lambda: aten.gelu(x, approximate=approximate)
    if kind in ('geluTanhBackward', 'geluErfBackward'):
        x, dout = torch.randn(d['n']) * 4, torch.randn(d['n'])
        approximate = 'tanh' if kind == 'geluTanhBackward' else 'none'
        return lambda: aten.gelu_backward(dout, x, approximate=approximate)
    if kind == 'add':
        a, b = torch.randn(d['n']), torch.randn(d['n'])
        return lambda: torch.add(a, b)
    if kind == 'addRow':
        a, b = torch.randn(d['N'], d['C']), torch.randn(d['C'])
        return lambda: torch.add(a, b)
    if kind == 'sumRows':
        a = torch.randn(d['N'], d['C'])
        return lambda: a.sum(0)
    if kind in ('softmaxForward', 'softmaxBackward'):
        x = torch.randn(d['N'], d['C']) * 4
        y = aten._softmax(x, -1, False)
        if kind == 'softmaxForward':
            return lambda: aten._softmax(x, -1, False)
        dout = torch.randn_like(x)
        return lambda: aten._softmax_backward_data(dout, y, -1, torch.float32)
    if kind in ('logprobsForward', 'logprobsBackward'):
        N, V = d['N'], d['V']
        logits = (torch.rand(N, V) * 2 - 1) * 8
        labels = (torch.arange(N) * 7919) % V
        if kind == 'logprobsForward':
            return lambda: aten.log_softmax(logits, -1).gather(1, labels[:, None])
        logp = aten.log_softmax(logits, -1)
        dout = torch.randn(N, 1)

        def backward():
            g = torch.zeros(N, V).scatter_(1, labels[:, None], dout)
            return aten._log_softmax_backward_data(g, logp, 1, torch.float32)
        return backward
    if kind in ('gatherRows', 'scatterAddRows'):
        N, V, C = d['N'], d['V'], d['C']
        idx = (torch.arange(N) * 7919) % V
        if kind == 'gatherRows':
            table = torch.randn(V, C)
            return lambda: aten.embedding(table, idx)
        dout = torch.randn(N, C)
        return lambda: aten.embedding_dense_backward(dout, idx, V, -1, False)
    if kind == 'permute':
        x = torch.randn(d['B'], d['T'], d['NH'], d['HS'])
        return lambda: x.permute(0, 2, 1, 3).contiguous()
    if kind == 'adamw':
        return adamw(d['n'], fused=False)
    if kind == 'adamwFused':
        return adamw(d['n'], fused=True)
    if kind == 'sumSquares':
        g = torch.randn(d['n'])
        return lambda: torch.linalg.vector_norm(g)
    raise ValueError(f'torch_kernels.py: unknown kind {kind!r}')


def adamw(n, fused):
    p = torch.nn.Parameter(torch.rand(n) * 2 - 1)
    p.grad = (torch.rand(n) * 2 - 1) * 0.01
    opt = torch.optim.AdamW([p], lr=1e-4, weight_decay=0.01, fused=fused or None)
    return opt.step


def main():
    spec = json.load(sys.stdin)
    torch.manual_seed(0)
    for threads in spec['threads']:
        torch.set_num_threads(threads)
        for c in spec['cases']:
            with torch.no_grad():
                best, median, cpu = time_runs(prepare(c['kind'], c['dims']), spec['min_seconds'], spec['max_reps'], 3)
            emit(c['name'], threads, best, median, cpu)


if __name__ == '__main__':
    main()
