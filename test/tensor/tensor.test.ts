// The Tensor, the tape and memory: makers and views, named errors on bad
// input, disposed tensors, noGrad, gradient accumulation, freed graphs,
// tidy/keep, the caching allocator, and the seeded RNG.
import t from 'tap';
import * as T from '../../src/tensor/index.js';

t.test('makers and views', async (tt) => {
  const x = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  tt.same(x.shape, [2, 3]);
  tt.equal(x.dtype, 'f32');
  tt.same(T.ones([2]).toArray(), [1, 1]);
  tt.same(T.full([3], 2.5).toArray(), [2.5, 2.5, 2.5]);
  tt.equal(T.fromI32([7, -1]).dtype, 'i32');
  const v = x.reshape([3, -1]);
  tt.same(v.shape, [3, 2]);
  x.f32[0] = 9;
  tt.equal(v.f32[0], 9, 'reshape is a view on the same storage');
  x.dispose();
  tt.equal(v.f32[0], 9, 'the view keeps the storage alive after the original is disposed');
  tt.equal(T.sum(T.tensor([1, 2, 3])).item(), 6);
  tt.throws(() => T.tensor([1, 2, 3], [2, 2]), /tensor: 3 values do not fill shape \[2, 2\]/);
  tt.throws(() => T.zeros([2, -1]), /full: bad shape \[2, -1\]/);
  tt.throws(() => T.tensor([[1, 2], [3, 4]] as unknown as number[], [2, 2]), /tensor: values must be a flat array of numbers/);
  tt.throws(() => T.tensor([1, 2]).item(), /item: tensor has 2 elements/);
});

t.test('bad shapes and dtypes throw errors naming the op and the shapes', async (tt) => {
  const a = T.zeros([2, 3]);
  tt.throws(() => T.linear(a, T.zeros([4, 5])), /linear: x \[2, 3\] does not match weight \[4, 5\]/);
  tt.throws(() => T.linear(a, T.zeros([4, 3]), T.zeros([5])), /linear: bias \[5\] does not match weight \[4, 3\]/);
  tt.throws(() => T.matmul(a, T.zeros([2, 3])), /matmul: inner dims differ: a \[2, 3\] @ b \[2, 3\]/);
  tt.throws(() => T.matmul(T.zeros([2, 2, 3]), T.zeros([3, 3, 1])), /matmul: batch dims differ/);
  tt.throws(() => T.add(a, T.zeros([2])), /add: b \[2\] must equal a \[2, 3\] or a suffix of it/);
  tt.throws(() => T.mul(a, T.zeros([4, 2, 3])), /mul: cannot broadcast b \[4, 2, 3\] to a \[2, 3\]/);
  tt.throws(() => T.reshape(a, [4, 2]), /reshape: cannot view \[2, 3\] \(6 elements\) as \[4, 2\]/);
  tt.throws(() => T.permute(a, [0, 0]), /permute: perm \[0, 0\] is not a permutation/);
  tt.throws(() => T.split(a, [1, 1], 1), /split: sizes \[1, 1\] do not add up to dim 1 of \[2, 3\]/);
  tt.throws(() => T.concat([a, T.zeros([3, 3])], 1), /concat: xs\[1\] \[3, 3\] does not match xs\[0\] \[2, 3\] outside dim 1/);
  tt.throws(() => T.exp(T.fromI32([1, 2])), /exp: x must be f32, got i32 \[2\]/);
  tt.throws(() => T.embedding(T.zeros([2]), T.zeros([4, 3])), /embedding: ids must be i32, got f32 \[2\]/);
  tt.throws(() => T.logprobs(T.zeros([3, 5]), T.fromI32([1, 2])), /logprobs: labels \[2\] must be the leading dims of logits \[3, 5\]/);
  tt.throws(() => T.layerNorm(a, T.ones([2]), null, 1e-5), /layerNorm: weight \[2\] does not match x \[2, 3\]/);
  tt.throws(() => T.attention(T.zeros([1, 3, 2, 4]), T.zeros([1, 2, 2, 4]), T.zeros([1, 2, 2, 4]), { causal: true }),
    /attention: query heads 3 are not a multiple of kv heads 2/);
  tt.throws(() => T.attention(T.zeros([1, 2, 2, 4]), T.zeros([1, 2, 3, 4]), T.zeros([1, 2, 3, 4]), { causal: true, keyMask: T.ones([1, 2]) }),
    /attention: keyMask \[1, 2\] must be \[B, Tk\] = \[1, 3\]/);
  tt.throws(() => T.rope(T.zeros([1, 2, 1, 4]), T.fromI32([0, 1], [1, 2]), T.ones([1]), 3, false), /rope: rotaryDim 3 must be even/);
  tt.throws(() => T.maskedMean(T.ones([3]), T.zeros([3])), /maskedMean: mask \[3\] is all zero/);
  tt.throws(() => T.crossEntropy(T.zeros([2, 3]), T.fromI32([-1, -100])), /crossEntropy: every label of \[2\] is ignored/);
  tt.throws(() => T.gatherRows(T.zeros([2, 3]), T.fromI32([5])), /gatherRows/);
  tt.throws(() => T.dropout(a, 1, new T.Rng(1)), /dropout: p must be in \[0, 1\), got 1/);
});

t.test('a disposed tensor throws naming the op; dispose is idempotent', async (tt) => {
  const x = T.tensor([1, 2]);
  x.dispose();
  x.dispose();
  tt.ok(x.disposed);
  tt.throws(() => T.exp(x), /exp: x \[2\] was disposed/);
  tt.throws(() => T.add(T.ones([2]), x), /add: b \[2\] was disposed/);
  tt.throws(() => x.data, /Tensor.data: tensor \[2\] was disposed/);
});

t.test('noGrad records nothing', async (tt) => {
  const w = T.param(T.tensor([1, 2, 3]));
  const y = T.noGrad(() => T.sum(T.mul(w, w)));
  tt.equal(y.requiresGrad, false);
  tt.equal(y.node, null);
  tt.equal(T.isGradEnabled(), true, 'grad mode restored');
  tt.throws(() => y.backward(), /backward: tensor \[\] does not require grad/);
  const z = T.sum(T.mul(w, w));
  tt.equal(z.requiresGrad, true);
  tt.not(z.node, null);
});

t.test('gradients accumulate over two backward calls until zeroGrad', async (tt) => {
  const w = T.param(T.tensor([1, -2, 3]));
  const x = T.tensor([0.5, 0.25, 2]);
  const loss = () => T.sum(T.mul(T.mul(w, w), x)); // d/dw = 2 w x
  loss().backward();
  tt.same(w.grad!.toArray(), [1, -1, 12]);
  loss().backward();
  tt.same(w.grad!.toArray(), [2, -2, 24], 'second backward adds');
  T.zeroGrad([w]);
  tt.equal(w.grad, null);
  loss().backward();
  tt.same(w.grad!.toArray(), [1, -1, 12]);
});

t.test('fan-out: a tensor used twice gets both gradients; an input disposed before backward still works', async (tt) => {
  const w = T.param(T.tensor([2, 3]));
  const h = T.exp(w);
  const y = T.sum(T.add(T.mul(h, h), h)); // d/dw = 2 e^2w + e^w
  h.dispose();
  y.backward();
  const want = [2, 3].map((v) => 2 * Math.exp(2 * v) + Math.exp(v));
  w.grad!.toArray().forEach((g, i) => tt.ok(Math.abs(g - want[i]) < 1e-4 * want[i], `grad ${i}: ${g} vs ${want[i]}`));
});

t.test('a graph runs backward once unless retainGraph', async (tt) => {
  const w = T.param(T.tensor([1, 2]));
  const y = T.sum(T.exp(w));
  y.backward(undefined, { retainGraph: true });
  y.backward();
  tt.ok(Math.abs(w.grad!.f32[0] - 2 * Math.E) < 1e-5);
  tt.throws(() => y.backward(), /backward: the graph through (sum|exp) was already freed/);
  tt.throws(() => T.exp(w).backward(), /backward: grad can be omitted only for a one-element tensor, not \[2\]/);
  const z = T.exp(w);
  tt.throws(() => z.backward(T.ones([3])), /backward: grad f32 \[3\] does not match tensor f32 \[2\]/);
  z.backward(T.tensor([1, 0]));
});

t.test('tidy frees what it does not return; params and kept tensors survive; memory comes back', async (tt) => {
  const w = T.param(T.tensor([1, 2, 3]));
  const before = T.allocator.stats().bytesInUse;
  let inner: T.Tensor | null = null;
  let kept: T.Tensor | null = null;
  const out = T.tidy(() => {
    inner = T.exp(w);
    kept = T.keep(T.ones([4]));
    const nested = T.tidy(() => T.mul(inner!, 2));
    T.sum(nested).backward();
    return { nested, list: [T.add(nested, 1)] };
  });
  tt.ok(inner!.disposed, 'intermediate disposed');
  tt.notOk(kept!.disposed, 'kept tensor survives');
  tt.notOk(out.nested.disposed, 'returned tensor (in an object) survives');
  tt.notOk(out.list[0].disposed, 'returned tensor (in an array) survives');
  tt.notOk(w.disposed, 'parameter survives');
  tt.notOk(w.grad!.disposed, 'gradient survives');
  out.nested.dispose();
  out.list[0].dispose();
  kept!.dispose();
  T.zeroGrad([w]);
  tt.equal(T.allocator.stats().bytesInUse, before, 'every buffer went back');
  tt.throws(() => T.tidy(() => Promise.resolve(1)), /tidy: fn returned a Promise/);
});

t.test('a tidy that throws frees everything it made and rethrows', async (tt) => {
  const w = T.param(T.tensor([1, 2]));
  const before = T.allocator.stats().bytesInUse;
  tt.throws(() => T.tidy(() => {
    T.exp(T.mul(w, 2));
    T.linear(T.zeros([2, 3]), T.zeros([4, 5]));
  }), /linear: x \[2, 3\] does not match weight \[4, 5\]/);
  tt.equal(T.allocator.stats().bytesInUse, before);
});

t.test('a graph returned from tidy can still run backward; its saved buffers go after', async (tt) => {
  const w = T.param(T.tensor([0.5, -1]));
  const before = T.allocator.stats().bytesInUse;
  const loss = T.tidy(() => T.sum(T.tanh(T.mul(w, 3))));
  loss.backward();
  const want = [0.5, -1].map((v) => 3 * (1 - Math.tanh(3 * v) ** 2));
  w.grad!.toArray().forEach((g, i) => tt.ok(Math.abs(g - want[i]) < 1e-5, `grad ${i}`));
  loss.dispose();
  T.zeroGrad([w]);
  tt.equal(T.allocator.stats().bytesInUse, before);
  // A graph whose tidy ended without it is released: backward says so.
  let inner: T.Tensor | null = null;
  T.tidy(() => {
    inner = T.keep(T.sum(T.exp(w)));
  });
  tt.throws(() => inner!.backward(), /backward: the graph through (sum|exp) was already freed/);
  inner!.dispose();
});

t.test('split/concat along inner dims and views round-trip', async (tt) => {
  const x = T.tensor([...Array(24).keys()], [2, 3, 4]);
  const [a, b] = T.split(x, [1, 3], 2);
  tt.same(a.toArray(), [0, 4, 8, 12, 16, 20]);
  tt.same(b.shape, [2, 3, 3]);
  tt.same(T.concat([a, b], 2).toArray(), x.toArray());
  const [r0, r1] = T.split(x, [1, 1], 0);
  tt.same(r1.toArray(), x.toArray().slice(12));
  tt.same(T.concat([r0, r1], 0).toArray(), x.toArray());
  tt.same(T.sliceRows(x, 1, 2).shape, [1, 3, 4]);
  tt.same(T.transpose(T.tensor([1, 2, 3, 4, 5, 6], [2, 3]), 0, 1).toArray(), [1, 4, 2, 5, 3, 6]);
});

t.test('KV cache helpers: cacheWrite then attentionCached equals attention over the whole sequence', async (tt) => {
  const rng = new T.Rng(3);
  const [B, NH, NKV, Tn, HS, cap] = [2, 4, 2, 5, 8, 9];
  const q = T.randn([B, NH, Tn, HS], rng);
  const k = T.randn([B, NKV, Tn, HS], rng);
  const v = T.randn([B, NKV, Tn, HS], rng);
  const full = T.attention(q, k, v, { causal: true });
  const kc = T.zeros([B, NKV, cap, HS]);
  const vc = T.zeros([B, NKV, cap, HS]);
  // Prefill 3 positions, then decode one at a time.
  const steps = [[0, 3], [3, 4], [4, 5]];
  for (const [s, e] of steps) {
    T.cacheWrite(kc, T.split(k, [s, e - s, Tn - e].filter((n) => n > 0), 2)[s > 0 ? 1 : 0], s);
    T.cacheWrite(vc, T.split(v, [s, e - s, Tn - e].filter((n) => n > 0), 2)[s > 0 ? 1 : 0], s);
    const qs = T.split(q, [s, e - s, Tn - e].filter((n) => n > 0), 2)[s > 0 ? 1 : 0];
    const o = T.noGrad(() => T.attentionCached(qs, kc, vc, e, { causal: true }));
    const want = T.split(full, [s, e - s, Tn - e].filter((n) => n > 0), 2)[s > 0 ? 1 : 0];
    const diff = Math.max(...o.toArray().map((x, i) => Math.abs(x - want.f32[i])));
    tt.ok(diff < 1e-5, `positions ${s}..${e - 1}: max diff ${diff}`);
  }
  tt.throws(() => T.cacheWrite(kc, k, 6), /cacheWrite: positions 6..10 do not fit cache \[2, 2, 9, 8\]/);
});

t.test('caching allocator: size classes, reuse and stats', async (tt) => {
  tt.equal(T.sizeClass(1), 256);
  tt.equal(T.sizeClass(4096), 4096);
  tt.equal(T.sizeClass(4097), 5120);
  tt.equal(T.sizeClass(1 << 20), 1 << 20);
  tt.equal(T.sizeClass((1 << 20) + 1), (1 << 20) + (1 << 18));
  const a = new T.CachingAllocator();
  const s1 = a.alloc(10000);
  tt.equal(a.stats().bytesInUse, 10240);
  a.release(s1);
  tt.same([a.stats().bytesInUse, a.stats().bytesCached], [0, 10240]);
  const s2 = a.alloc(9000);
  tt.equal(s2.buffer, s1.buffer, 'a freed buffer of the same class is reused');
  tt.equal(a.stats().cacheHits, 1);
  const s3 = a.alloc(100);
  tt.equal(a.stats().peakBytesInUse, 10240 + 256);
  a.release(s2);
  a.release(s3);
  a.emptyCache();
  tt.same([a.stats().bytesInUse, a.stats().bytesCached], [0, 0]);
});

t.test('caching allocator: with ever-changing sizes, in use + cached stays within twice the peak', async (tt) => {
  const a = new T.CachingAllocator();
  const rng = new T.Rng(4);
  let worst = 0;
  for (let step = 0; step < 300; step++) {
    // A "batch" of buffers whose sizes follow a random sequence length.
    const len = 1 + rng.int(256);
    const held = [len * 4096, len * 1024, len * 1024, 50257 * len * 4].map((b) => a.alloc(b));
    const s = a.stats();
    worst = Math.max(worst, (s.bytesInUse + s.bytesCached) / s.peakBytesInUse);
    held.forEach((h) => a.release(h));
  }
  tt.ok(worst <= 2, `footprint / peak at most ${worst.toFixed(2)}`);
  tt.ok(a.stats().cacheHits > 100, `buffers are still reused (${a.stats().cacheHits} hits of ${a.stats().allocs})`);
});

t.test('RNG: reproducible from a seed, restorable state, sane moments', async (tt) => {
  const a = new T.Rng(2024);
  const b = new T.Rng(2024);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  tt.same(Array.from({ length: 5 }, () => b.nextU32()), xs);
  tt.notSame(Array.from({ length: 5 }, () => new T.Rng(2025).nextU32()), xs);
  a.normal();
  const st = a.getState();
  const seq = Array.from({ length: 7 }, () => a.normal());
  const c = new T.Rng(1);
  c.setState(JSON.parse(JSON.stringify(st)));
  tt.same(Array.from({ length: 7 }, () => c.normal()), seq, 'state survives a JSON round trip, spare normal included');
  const n = 20000;
  const z = T.randn([n], new T.Rng(5)).f32;
  let m = 0;
  let v = 0;
  for (const x of z) m += x / n;
  for (const x of z) v += (x - m) ** 2 / n;
  tt.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${m}, variance ${v}`);
  const u = T.rand([n], new T.Rng(6), -1, 3).f32;
  tt.ok(u.every((x) => x >= -1 && x < 3), 'uniform within [lo, hi)');
  tt.throws(() => c.setState({ s: [0, 0, 0, 0], spare: null }), /all-zero state/);
  const d1 = T.dropout(T.ones([64]), 0.5, new T.Rng(9)).toArray();
  tt.same(T.dropout(T.ones([64]), 0.5, new T.Rng(9)).toArray(), d1, 'dropout reproducible from the rng');
  tt.ok(d1.every((x) => x === 0 || x === 2), 'inverted dropout scales kept values by 1/(1-p)');
});

t.test('the documented head layout (one permute, split into views) equals split + three permutes, gradients included', async (tt) => {
  const [B, Tn, NH, HS] = [2, 3, 2, 4];
  const C = NH * HS;
  const x = T.param(T.randn([B, Tn, 3 * C], new T.Rng(8)));
  const r = T.randn([B, NH, Tn, HS], new T.Rng(9));
  const viaViews = () => {
    const [q, k, v] = T.split(T.permute(T.reshape(x, [B, Tn, 3, NH, HS]), [2, 0, 3, 1, 4]), [1, 1, 1], 0)
      .map((t) => T.reshape(t, [B, NH, Tn, HS]));
    return T.attention(q, k, v, { causal: true });
  };
  const viaSplit = () => {
    const [q, k, v] = T.split(x, [C, C, C], -1).map((t) => T.permute(T.reshape(t, [B, Tn, NH, HS]), [0, 2, 1, 3]));
    return T.attention(q, k, v, { causal: true });
  };
  const run = (f: () => T.Tensor) => T.tidy(() => {
    const o = f();
    T.sum(T.mul(o, r)).backward();
    const g = x.grad!.toArray();
    T.zeroGrad([x]);
    return { o: o.toArray(), g };
  });
  const a = run(viaViews);
  const b = run(viaSplit);
  tt.same(a.o, b.o);
  tt.same(a.g, b.g);
});
