// Compositions of ops against PyTorch (scripts/fixtures/tensor.py computes the
// same graphs in float64): outputs and every parameter gradient. Tolerance:
// |got - want| <= ATOL + RTOL |want|, float32 arithmetic against float64.
import t from 'tap';
import * as T from '../../src/tensor/index.js';
import { compare, get, loadFixture, type Fixture } from './fixtures/reader.js';

const ATOL = 1e-5;
const RTOL = 1e-4;

/** Builds the graph from fixture f (params are copies that want gradients), runs backward, and
 *  compares the named outputs and the gradients of every `grad_*` in the fixture. */
function check(tt: Tap, name: string, build: (p: (k: string) => T.Tensor, c: (k: string) => T.Tensor) => Record<string, T.Tensor>): void {
  const f: Fixture = loadFixture(name);
  const params = new Map<string, T.Tensor>();
  const p = (k: string) => {
    let x = params.get(k);
    if (x === undefined) params.set(k, (x = T.param(T.tensor(get(f, k).f32, get(f, k).shape))));
    return x;
  };
  const c = (k: string) => get(f, k);
  T.tidy(() => {
    // Built in an inner tidy and differentiated after it ended: what the
    // backward needs must survive the scope (tidy keeps the result's graph).
    const outs = T.tidy(() => build(p, c));
    outs.loss.backward();
    for (const [k, v] of Object.entries(outs)) {
      const want = get(f, k === 'loss' ? 'loss' : k);
      const r = compare(v.f32, want.f32, ATOL, RTOL);
      tt.ok(r.ok, `${name}: output ${k}: ${r.msg}`);
    }
  });
  for (const key of f.keys()) {
    if (!key.startsWith('grad_')) continue;
    const k = key.slice(5);
    const g = params.get(k)?.grad;
    if (!g) {
      tt.fail(`${name}: ${k} has no gradient`);
      continue;
    }
    const r = compare(g.f32, get(f, key).f32, ATOL, RTOL);
    tt.ok(r.ok, `${name}: grad of ${k}: ${r.msg}`);
  }
  for (const x of params.values()) x.dispose();
}
interface Tap {
  ok(cond: boolean, msg: string): void;
  fail(msg: string): void;
}

t.test('MLP block: layerNorm, linear, gelu (tanh), residual', async (tt) => {
  check(tt, 'mlp', (p, c) => {
    const h = T.layerNorm(p('x'), p('ln_w'), p('ln_b'), 1e-5);
    const a = T.gelu(T.linear(h, p('w1'), p('b1')), true);
    const y = T.add(T.linear(a, p('w2'), p('b2')), p('x'));
    return { y, loss: T.sum(T.mul(y, c('r'))) };
  });
});

t.test('LLaMA MLP: rmsNorm, SwiGLU, exact gelu, T = 1', async (tt) => {
  check(tt, 'swiglu', (p, c) => {
    const h = T.rmsNorm(p('x'), p('norm_w'), 1e-6);
    const a = T.mul(T.silu(T.linear(h, p('wg'))), T.linear(h, p('wu')));
    const y = T.add(T.linear(a, p('wd')), p('x'));
    const e = T.gelu(y, false);
    return { y, e, loss: T.sum(T.mul(e, c('r'))) };
  });
});

t.test('NeoX attention block: fused qkv split, partial rotary, left padding', async (tt) => {
  const [B, T_, NH, HS] = [2, 5, 3, 4];
  const C = NH * HS;
  check(tt, 'attn_neox', (p, c) => {
    const qkv = T.linear(p('x'), p('wqkv'), p('bqkv'));
    const [q0, k0, v0] = T.split(qkv, [C, C, C], -1).map((x) => T.reshape(x, [B, T_, NH, HS]));
    const q = T.rope(q0, c('pos'), c('inv_freq'), 2, false);
    const k = T.rope(k0, c('pos'), c('inv_freq'), 2, false);
    const heads = (x: T.Tensor) => T.permute(x, [0, 2, 1, 3]);
    const o = T.attention(heads(q), heads(k), heads(v0), { keyMask: c('mask'), causal: true });
    const y = T.linear(T.reshape(heads(o), [B, T_, C]), p('wo'), p('bo'));
    return { y, loss: T.sum(T.mul(y, c('r'))) };
  });
});

t.test('LLaMA attention block: grouped-query, interleaved full rotary', async (tt) => {
  const [B, T_, NH, NKV, HS] = [2, 4, 4, 2, 6];
  const C = NH * HS;
  check(tt, 'attn_gqa', (p, c) => {
    const x = p('x');
    const q = T.rope(T.reshape(T.linear(x, p('wq')), [B, T_, NH, HS]), c('pos'), c('inv_freq'), HS, true);
    const k = T.rope(T.reshape(T.linear(x, p('wk')), [B, T_, NKV, HS]), c('pos'), c('inv_freq'), HS, true);
    const v = T.reshape(T.linear(x, p('wv')), [B, T_, NKV, HS]);
    const o = T.attention(T.transpose(q, 1, 2), T.transpose(k, 1, 2), T.transpose(v, 1, 2), { causal: true });
    const y = T.linear(T.reshape(T.transpose(o, 1, 2), [B, T_, C]), p('wo'));
    return { y, loss: T.sum(T.mul(y, c('r'))) };
  });
});

t.test('LM head: embedding tied to the head, logprobs and cross-entropy with ignored labels', async (tt) => {
  const [B, T_, V] = [2, 3, 11];
  check(tt, 'head', (p, c) => {
    const h = T.layerNorm(T.embedding(c('ids'), p('table')), p('ln_w'), p('ln_b'), 1e-5);
    const logits = T.reshape(T.linear(h, p('table')), [B * T_, V]);
    const labels = T.reshape(c('labels'), [B * T_]);
    const lp = T.logprobs(logits, labels);
    const ce = T.crossEntropy(logits, labels);
    return { logits, lp, ce, loss: T.add(ce, T.mul(T.sum(T.mul(lp, c('r'))), 0.5)) };
  });
});

t.test('PPO losses: clipped policy (ties inside the clip range), clipped value, pairwise reward', async (tt) => {
  check(tt, 'ppo', (p, c) => {
    const lp = T.logprobs(p('logits'), c('labels'));
    const ratio = T.exp(T.sub(lp, c('old')));
    const negAdv = T.neg(c('adv'));
    const s1 = T.mul(negAdv, ratio);
    const s2 = T.mul(negAdv, T.clamp(ratio, 0.8, 1.2));
    const pg = T.maskedMean(T.maximum(s1, s2), c('mask'));
    const values = p('values');
    const vclip = T.minimum(T.maximum(values, T.sub(c('old_v'), 0.2)), T.add(c('old_v'), 0.2));
    const d1 = T.sub(values, c('ret'));
    const d2 = T.sub(vclip, c('ret'));
    const vf = T.mul(T.maskedMean(T.maximum(T.mul(d1, d1), T.mul(d2, d2)), c('mask')), 0.5);
    const rm = T.neg(T.mean(T.logSigmoid(T.sub(p('chosen'), p('rejected')))));
    return { pg, vf, rm, loss: T.add(T.add(pg, vf), rm) };
  });
});

t.test('the remaining ops: broadcasts, where, softmax, batched matmul, permute, split/concat, slices, gathers', async (tt) => {
  check(tt, 'misc', (p, c) => {
    const z = p('z');
    const s = T.softmax(z);
    const u = T.sigmoid(z);
    const l = T.log(T.add(u, 0.5));
    const w = T.where(c('cond'), T.tanh(z), l);
    const bc = T.add(T.sub(T.mul(z, p('rowm')), p('rows')), T.div(z, p('rowd')));
    const mn = T.add(T.minimum(bc, p('rowmin')), T.maximum(z, 0.1));
    const t1 = T.mul(T.add(T.add(T.div(s, T.add(u, 1)), w), mn), c('rs'));
    const part1 = T.sumLastDim(t1);
    const part2 = T.mean(T.mul(T.relu(z), T.silu(z)));
    const mm = T.matmul(p('a'), p('b'));
    const mw = T.matmul(p('a'), p('w'));
    const pp = T.permute(T.concat([mm, mw], -1), [2, 0, 3, 1]);
    const [x1, x2] = T.split(pp, [2, 3], 2);
    const rmP = T.split(T.permute(c('rm'), [2, 0, 3, 1]), [2, 3], 2)[1];
    const rows = T.reshape(pp, [4, -1]);
    const sl = T.sliceRows(rows, 1, 3);
    const g = T.gatherRows(rows, c('idx'));
    const pieces = T.add(T.add(T.sum(T.mul(x1, x1)), T.sum(T.mul(x2, rmP))), T.add(T.mul(T.sum(sl), 0.5), T.mean(T.mul(g, g))));
    const loss = T.add(T.add(T.sum(T.mul(part1, T.tensor([1, 2, 3, 4]))), part2), pieces);
    return { part1, mm, p: pp, loss };
  });
});
