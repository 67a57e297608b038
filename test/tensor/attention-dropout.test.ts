// attention() with dropout of the probabilities: the autograd rule against finite
// differences (the tolerances of gradcheck.test.ts) and against the unfused
// composition softmax -> * keep mask -> matmul on the tape; one seed drawn per
// call and none at p = 0; under checkpoint() the mask is replayed, so gradients
// are bitwise those of the plain tape (and differ when the generator is not
// replayed).
import t from 'tap';
import { native } from '../../src/native.js';
import * as T from '../../src/tensor/index.js';

const H = 1e-2;
const ATOL = 3e-3;
const RTOL = 2e-2;

// Causal, grouped-query (4 query heads on 2 kv heads), Tq < Tk, a left-padded batch row.
const [B, NH, NKV, Tq, Tk, HS] = [2, 4, 2, 3, 5, 6];
const P = 0.3;
const SEED = 11;

function inputs() {
  const rng = new T.Rng(42);
  const q = T.param(T.randn([B, NH, Tq, HS], rng));
  const k = T.param(T.randn([B, NKV, Tk, HS], rng));
  const v = T.param(T.randn([B, NKV, Tk, HS], rng));
  const keyMask = T.tensor(Array.from({ length: B * Tk }, (_, i) => (i >= Tk && i < Tk + 2 ? 0 : 1)), [B, Tk]);
  const r = T.randn([B, NH, Tq, HS], rng);
  return { q, k, v, keyMask, r };
}

/** The fused op with a generator made afresh, so every call draws the same seed. */
function fused(q: T.Tensor, k: T.Tensor, v: T.Tensor, keyMask: T.Tensor): T.Tensor {
  return T.attention(q, k, v, { keyMask, causal: true, dropout: { p: P, rng: new T.Rng(SEED) } });
}

t.test('gradcheck: attention with dropout (fixed seed) against central differences', async (t) => {
  const { q, k, v, keyMask, r } = inputs();
  T.tidy(() => T.sum(T.mul(fused(q, k, v, keyMask), r)).backward());
  const loss = () => T.tidy(() => {
    const o = T.noGrad(() => fused(q, k, v, keyMask)).f32;
    let s = 0;
    for (let i = 0; i < o.length; i++) s += o[i] * r.f32[i];
    return s;
  });
  const pick = new T.Rng(3);
  for (const [name, x] of [['q', q], ['k', k], ['v', v]] as const) {
    const d = x.f32, g = x.grad!.f32;
    let worst = 0, msg = '';
    for (let s = 0; s < 8; s++) {
      const i = pick.int(d.length);
      const x0 = d[i];
      d[i] = x0 + H;
      const lp = loss();
      d[i] = x0 - H;
      const lm = loss();
      d[i] = x0;
      const fd = (lp - lm) / (2 * H);
      const ratio = Math.abs(fd - g[i]) / (ATOL + RTOL * Math.abs(g[i]));
      if (!(ratio <= worst)) {
        worst = ratio;
        msg = `[${i}] analytic ${g[i].toPrecision(6)} vs finite difference ${fd.toPrecision(6)}`;
      }
    }
    t.ok(worst <= 1, `d/d${name} ${msg} (${worst.toFixed(2)}x the tolerance)`);
  }
  for (const x of [q, k, v, keyMask, r]) x.dispose();
});

t.test('fused dropout attention = softmax, keep mask, matmul on the tape (values and gradients)', async (t) => {
  const { q, k, v, keyMask, r } = inputs();
  const seed = new T.Rng(SEED).nextU32();  // what fused() draws
  const z = new Float32Array(B * NH * Tq * Tk);
  native.attentionDropoutKeep(z, B, NH, Tq, Tk, P, seed);
  // Additive mask: key padding and causality (query i sits at position Tk - Tq + i).
  const add = new Float32Array(B * NH * Tq * Tk);
  for (let b = 0; b < B; b++) for (let h = 0; h < NH; h++) for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
    const visible = keyMask.f32[b * Tk + j] !== 0 && j <= Tk - Tq + i;
    add[((b * NH + h) * Tq + i) * Tk + j] = visible ? 0 : -1e30;
  }
  const grads = (run: () => T.Tensor) => {
    T.zeroGrad([q, k, v]);
    const out = T.tidy(() => {
      const o = run();
      T.sum(T.mul(o, r)).backward();
      return Float32Array.from(o.f32);
    });
    return { out, dq: Float32Array.from(q.grad!.f32), dk: Float32Array.from(k.grad!.f32), dv: Float32Array.from(v.grad!.f32) };
  };
  // k, v repeated per query head ([B, NKV, Tk, HS] -> [B, NH, Tk, HS]) for the unfused form.
  const perHead = (x: T.Tensor) => T.reshape(T.concat(T.split(x, [1, 1], 1).flatMap((g) => [g, g]), 1), [B, NH, Tk, HS]);
  const unfused = () => {
    const s = T.affine(T.matmul(q, T.transpose(perHead(k), 2, 3)), 1 / Math.sqrt(HS), 0);
    const p = T.mul(T.softmax(T.add(s, T.fromData(add, [B, NH, Tq, Tk]))), T.fromData(z, [B, NH, Tq, Tk]));
    return T.matmul(p, perHead(v));
  };
  const a = grads(() => fused(q, k, v, keyMask));
  const b = grads(unfused);
  // float32 both ways, summed in different orders: |diff| <= 1e-5 + 1e-4 |unfused| (attention.test.ts's GRAD).
  const worst = (x: Float32Array, y: Float32Array) => x.reduce((m, xi, i) => Math.max(m, Math.abs(xi - y[i]) / (1e-5 + 1e-4 * Math.abs(y[i]))), 0);
  for (const name of ['out', 'dq', 'dk', 'dv'] as const) {
    const w = worst(a[name], b[name]);
    t.ok(w <= 1, `${name} within tolerance (${w.toFixed(3)}x)`);
  }
  t.ok(z.some((x) => x === 0), 'the mask drops some entries');
  for (const x of [q, k, v, keyMask, r]) x.dispose();
});

t.test('one seed per call; p = 0 is plain attention and draws nothing; p is checked', async (t) => {
  const { q, k, v, keyMask, r } = inputs();
  T.noGrad(() => {
    const plain = T.attention(q, k, v, { keyMask, causal: true }).f32;
    const rng = new T.Rng(5);
    const before = JSON.stringify(rng.getState());
    const zero = T.attention(q, k, v, { keyMask, causal: true, dropout: { p: 0, rng } }).f32;
    t.same(Array.from(zero), Array.from(plain), 'p 0 gives the plain output');
    t.equal(JSON.stringify(rng.getState()), before, 'p 0 draws nothing from the generator');
    const a = T.attention(q, k, v, { keyMask, causal: true, dropout: { p: P, rng } }).f32;
    const b = T.attention(q, k, v, { keyMask, causal: true, dropout: { p: P, rng } }).f32;
    const expect = new T.Rng(5);
    expect.nextU32();
    expect.nextU32();
    t.equal(JSON.stringify(rng.getState()), JSON.stringify(expect.getState()), 'each call draws one 32-bit seed');
    t.ok(a.some((x, i) => x !== b[i]), 'successive calls use different masks');
    t.ok(a.some((x, i) => x !== plain[i]), 'dropout changes the output');
    t.throws(() => T.attention(q, k, v, { causal: true, dropout: { p: 1, rng } }), /attention: dropout p must be in \[0, 1\), got 1/);
  });
  for (const x of [q, k, v, keyMask, r]) x.dispose();
});

t.test('under checkpoint() the mask is replayed: gradients bitwise equal to the plain tape', async (t) => {
  const C = NH * HS;
  const T2 = 7;
  const run = (mode: 'plain' | 'checkpoint' | 'not replayed') => {
    const init = new T.Rng(8);
    const wqkv = T.param(T.randn([3 * C, C], init, { std: 0.3 }));
    const wo = T.param(T.randn([C, C], init, { std: 0.3 }));
    const x = T.param(T.randn([B, T2, C], init));
    const probe = T.randn([B, T2, C], init);
    const rng = new T.Rng(99);
    const block = (h: T.Tensor) => {
      const qkv = T.linear(h, wqkv);
      const [q, k, v] = T.split(T.permute(T.reshape(qkv, [B, T2, 3, NH, HS]), [2, 0, 3, 1, 4]), [1, 1, 1], 0)
        .map((y) => T.reshape(y, [B, NH, T2, HS]));
      const o = T.attention(q, k, v, { causal: true, dropout: { p: P, rng } });
      return T.linear(T.reshape(T.permute(o, [0, 2, 1, 3]), [B, T2, C]), wo);
    };
    T.tidy(() => {
      const y = mode === 'plain' ? block(x) : T.checkpoint(block, [x], { rngs: mode === 'checkpoint' ? [rng] : [] });
      T.sum(T.mul(y, probe)).backward();
    });
    const out = { state: JSON.stringify(rng.getState()), grads: [wqkv, wo, x].map((p) => Float32Array.from(p.grad!.f32)) };
    for (const p of [wqkv, wo, x, probe]) p.dispose();
    return out;
  };
  const bits = (a: Float32Array, b: Float32Array) => a.every((x, i) => Object.is(x, b[i]));
  const plain = run('plain'), ck = run('checkpoint'), loose = run('not replayed');
  t.ok(plain.grads.every((g, i) => bits(g, ck.grads[i])), 'wqkv, wo and input gradients are bitwise equal');
  t.equal(ck.state, plain.state, 'the generator ends where the plain tape leaves it');
  t.ok(plain.grads.some((g, i) => !bits(g, loose.grads[i])), 'without replaying the generator the recompute uses another mask');
});
