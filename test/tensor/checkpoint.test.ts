// Gradient checkpointing against the plain tape: a pre-LN transformer block
// (layerNorm, linear, attention with a key mask, GELU MLP, residual dropout)
// whose parameters fn only closes over, stacked 4 deep. With and without
// checkpointing the loss and every gradient (parameters, and the input when it
// wants one) agree within 1e-6, dropout included (its generator is replayed);
// the allocator's peak bytes in use during the forward drop with it.
import t from 'tap';
import * as T from '../../src/tensor/index.js';

const [B, Tn, C, NH] = [2, 16, 32, 4];
const HS = C / NH;
const LAYERS = 4;
const P_DROP = 0.1;

interface Block {
  ln1w: T.Tensor; ln1b: T.Tensor; wqkv: T.Tensor; bqkv: T.Tensor; wo: T.Tensor;
  ln2w: T.Tensor; ln2b: T.Tensor; wup: T.Tensor; bup: T.Tensor; wdown: T.Tensor;
}

function makeBlocks(seed: number): Block[] {
  const rng = new T.Rng(seed);
  const w = (shape: number[], std = 0.2) => T.param(T.randn(shape, rng, { std }));
  return Array.from({ length: LAYERS }, () => ({
    ln1w: w([C], 1), ln1b: w([C]), wqkv: w([3 * C, C]), bqkv: w([3 * C]), wo: w([C, C]),
    ln2w: w([C], 1), ln2b: w([C]), wup: w([4 * C, C]), bup: w([4 * C]), wdown: w([C, 4 * C]),
  }));
}

/** One pre-LN block over x [B, T, C]; p and rng come from the closure, keyMask is an input. */
function block(p: Block, rng: T.Rng | null, x: T.Tensor, keyMask: T.Tensor): T.Tensor {
  const drop = (h: T.Tensor) => (rng ? T.dropout(h, P_DROP, rng) : h);
  const qkv = T.linear(T.layerNorm(x, p.ln1w, p.ln1b, 1e-5), p.wqkv, p.bqkv);
  const [q, k, v] = T.split(T.permute(T.reshape(qkv, [B, Tn, 3, NH, HS]), [2, 0, 3, 1, 4]), [1, 1, 1], 0).map((h) => T.reshape(h, [B, NH, Tn, HS]));
  const o = T.reshape(T.permute(T.attention(q, k, v, { keyMask, causal: true }), [0, 2, 1, 3]), [B, Tn, C]);
  const x1 = T.add(x, drop(T.linear(o, p.wo)));
  const up = T.gelu(T.linear(T.layerNorm(x1, p.ln2w, p.ln2b, 1e-5), p.wup, p.bup), true);
  return T.add(x1, drop(T.linear(up, p.wdown)));
}

interface Run {
  loss: number;
  grads: Float32Array[];
  inputGrad: Float32Array | null;
  peakForward: number;
}

/** Forward of the stack (per-block tidy, as the model does), loss = sum(out * probe), backward. */
function run(ckpt: boolean, opts: { inputGrad: boolean; dropout: boolean }): Run {
  const blocks = makeBlocks(3);
  const data = new T.Rng(9);
  const rng = new T.Rng(77);
  const x0 = T.randn([B, Tn, C], data, { requiresGrad: opts.inputGrad });
  const probe = T.randn([B, Tn, C], data);
  // Row 1 is left-padded by 5 positions.
  const keyMask = T.tensor(Array.from({ length: B * Tn }, (_, i) => (i >= Tn && i < Tn + 5 ? 0 : 1)), [B, Tn]);
  const drng = opts.dropout ? rng : null;
  T.allocator.resetPeak();
  const before = T.allocator.stats().bytesInUse;
  let peakForward = 0;
  const loss = T.tidy(() => {
    let x = x0;
    for (const p of blocks) {
      const input = x;
      x = T.tidy(() => (ckpt
        ? T.checkpoint((h, m) => block(p, drng, h, m), [input, keyMask], { rngs: [rng] })
        : block(p, drng, input, keyMask)));
    }
    const l = T.sum(T.mul(x, probe));
    peakForward = T.allocator.stats().peakBytesInUse - before;
    l.backward();
    return l.item();
  });
  const grads = blocks.flatMap((p) => Object.values(p).map((w: T.Tensor) => Float32Array.from(w.grad!.f32)));
  const inputGrad = x0.grad ? Float32Array.from(x0.grad.f32) : null;
  for (const p of blocks) for (const w of Object.values(p)) (w as T.Tensor).dispose();
  for (const u of [x0, probe, keyMask]) u.dispose();
  return { loss, grads, inputGrad, peakForward };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

for (const inputGrad of [true, false]) {
  for (const dropout of [false, true]) {
    t.test(`checkpointed stack = plain stack (input ${inputGrad ? 'wants' : 'without'} a gradient, dropout ${dropout ? 'on' : 'off'})`, (t) => {
      const plain = run(false, { inputGrad, dropout });
      const ck = run(true, { inputGrad, dropout });
      t.ok(Math.abs(plain.loss - ck.loss) <= 1e-6 * (1 + Math.abs(plain.loss)), `loss ${ck.loss} vs ${plain.loss}`);
      t.equal(ck.grads.length, plain.grads.length);
      t.equal(plain.grads.filter((g) => g.every((v) => v === 0)).length, 0, 'every parameter gets a nonzero gradient');
      const worst = Math.max(...plain.grads.map((g, i) => maxRelDiff(ck.grads[i], g)));
      t.ok(worst <= 1e-6, `every parameter gradient within 1e-6 (max |diff|/(1+|want|) = ${worst.toExponential(2)})`);
      if (inputGrad) {
        const d = maxRelDiff(ck.inputGrad!, plain.inputGrad!);
        t.ok(d <= 1e-6, `input gradient within 1e-6 (${d.toExponential(2)})`);
      } else {
        t.equal(ck.inputGrad, null, 'an input that wants no gradient gets none');
      }
      t.end();
    });
  }
}

t.test('the forward of a checkpointed 4-block stack holds clearly less memory', (t) => {
  const plain = run(false, { inputGrad: true, dropout: true });
  const ck = run(true, { inputGrad: true, dropout: true });
  t.comment(`peak bytes in use during the forward: plain ${plain.peakForward}, checkpointed ${ck.peakForward} (${(plain.peakForward / ck.peakForward).toFixed(2)}x)`);
  t.ok(ck.peakForward * 2 < plain.peakForward, `checkpointed peak ${ck.peakForward} B is under half the plain ${plain.peakForward} B`);
  t.end();
});

t.test('checkpoint: the tape around it', (t) => {
  const rng = new T.Rng(1);
  const w = T.param(T.randn([4, 4], rng));
  const x = T.randn([2, 4], rng);
  // Under noGrad it is a plain call: no node, nothing kept.
  const y0 = T.noGrad(() => T.checkpoint((h) => T.linear(h, w), [x]));
  t.equal(y0.node, null);
  t.equal(y0.requiresGrad, false);
  // Twice through one graph with retainGraph: the gradient doubles, as with the plain tape.
  const y = T.checkpoint((h) => T.tanh(T.linear(h, w)), [x]);
  const l = T.sum(y);
  l.backward(undefined, { retainGraph: true });
  const once = Float32Array.from(w.grad!.f32);
  l.backward();
  t.ok(maxRelDiff(w.grad!.f32, once.map((v) => 2 * v)) < 1e-6, 'retainGraph: the recompute runs again');
  t.throws(() => l.backward(), /already freed/, 'a freed checkpoint node says so');
  t.throws(() => T.checkpoint((h) => h, [x]), /checkpoint: fn returned a tensor it did not make/);
  t.throws(() => T.checkpoint(() => w, [x]), /checkpoint: fn returned a tensor it did not make/);
  // The recompute sees the same generator state as the forward; the stream afterwards is untouched.
  const r = new T.Rng(5);
  const xg = T.randn([64], rng, { requiresGrad: true });
  const yd = T.checkpoint((h) => T.dropout(h, 0.5, r), [xg], { rngs: [r] });
  const next = r.getState();
  T.sum(yd).backward();
  t.same(r.getState(), next, 'the generator is where the forward left it');
  const kept = Array.from(yd.f32, (v) => (v !== 0 ? 2 : 0));
  t.same(Array.from(xg.grad!.f32), kept, 'the gradient uses the forward\'s dropout mask');
  for (const u of [w, x, y0, y, l, xg, yd]) u.dispose();
  t.end();
});
