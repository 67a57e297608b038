// Fused attention and rotary embedding kernels (native/attention*.cc, native/rope.cc)
// against the PyTorch reference in test/fixtures/attention (scripts/fixtures/attention.py),
// finite differences, KV-cache decode against full attention, thread-count agreement,
// and argument checks of the binding.
import t from 'tap';
import type { Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/native.js';
import { repoRoot } from '../../src/util/paths.js';

// ---- helpers ----

interface Tol { rtol: number; atol: number }

/** null when |got - want| <= atol + rtol |want| everywhere (infinities must match exactly). */
function mismatch(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): string | null {
  if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
  let bad = -1, maxDiff = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    const ok = Number.isFinite(w) ? Math.abs(g - w) <= tol.atol + tol.rtol * Math.abs(w) : g === w;
    if (Number.isFinite(w) && !(Math.abs(g - w) <= maxDiff)) maxDiff = Math.abs(g - w);
    if (!ok && bad < 0) bad = i;
  }
  if (bad < 0) return null;
  return `element ${bad}: got ${got[bad]}, expected ${want[bad]}; max |diff| ${maxDiff} (rtol ${tol.rtol}, atol ${tol.atol})`;
}

function close(t: Test, name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tol): void {
  const m = mismatch(got, want, tol);
  t.ok(m === null, m === null ? name : `${name}: ${m}`);
}

/** Seeded normal floats (mulberry32 + Box-Muller). */
function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
  return out;
}

function leftPadMask(B: number, Tk: number, pads: number[]): Float32Array {
  const m = new Float32Array(B * Tk).fill(1);
  pads.forEach((p, b) => m.fill(0, b * Tk, b * Tk + p));
  return m;
}

/** k or v [B, NKV, Tk, HS] copied into a cache [B, NKV, kvCap, HS] whose unused rows hold NaN. */
function toCache(x: Float32Array, BNKV: number, Tk: number, kvCap: number, HS: number): Float32Array {
  const c = new Float32Array(BNKV * kvCap * HS).fill(NaN);
  for (let g = 0; g < BNKV; g++) c.set(x.subarray(g * Tk * HS, (g + 1) * Tk * HS), g * kvCap * HS);
  return c;
}

function errorOf(fn: () => void): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  return new Error('(no error thrown)');
}

// Every test that changes the kernel thread count puts it back.
const threadsAtStart = native.getThreads();
t.teardown(() => native.setThreads(threadsAtStart));

// ---- PyTorch fixtures ----

const FIXTURE_VERSION = 1;
const fixtureDir = join(repoRoot, 'test/fixtures/attention');

interface TensorRef { offset: number; shape: number[] }
interface AttentionCase {
  name: string; op: 'attention'; B: number; NH: number; NKV: number; Tq: number; Tk: number;
  HS: number; scale: number; causal: boolean; kvCap: number; masked: boolean;
  tensors: Record<string, TensorRef>;
}
interface RopeCase {
  name: string; op: 'rope'; B: number; T: number; NH: number; HS: number; rotary_dim: number;
  interleaved: boolean; tensors: Record<string, TensorRef>;
}

const meta = JSON.parse(readFileSync(join(fixtureDir, 'cases.json'), 'utf8')) as {
  version: number; cases: (AttentionCase | RopeCase)[];
};
const blob = readFileSync(join(fixtureDir, 'cases.bin'));
const data = new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));

/** A fresh copy of one fixture tensor (kernels may write into what they are given). */
function tensor(c: AttentionCase | RopeCase, name: string): Float32Array {
  const ref = c.tensors[name];
  if (!ref) throw new Error(`fixture case '${c.name}' has no tensor '${name}'`);
  const n = ref.shape.reduce((a, b) => a * b, 1);
  return data.slice(ref.offset, ref.offset + n);
}

// Forward values are float32 computations of float64 references: a few ulp per term.
const FWD: Tol = { rtol: 1e-5, atol: 2e-6 };
// Gradients sum over keys and, for dk/dv, over the heads of a group.
const GRAD: Tol = { rtol: 1e-4, atol: 1e-5 };
// Rope: one rotation; cos/sin within an ulp of PyTorch's.
const ROPE: Tol = { rtol: 1e-5, atol: 1e-6 };

t.equal(meta.version, FIXTURE_VERSION,
  'attention fixtures are of the expected version (regenerate from the repository root with .venv/bin/python scripts/fixtures/attention.py, after npm run bench -- setup)');

t.test('attention matches PyTorch (outputs, lse, gradients)', async (t) => {
  for (const c of meta.cases) {
    if (c.op !== 'attention') continue;
    const { B, NH, NKV, Tq, Tk, HS, kvCap, scale, causal } = c;
    const q = tensor(c, 'q'), k = tensor(c, 'k'), v = tensor(c, 'v');
    const mask = c.masked ? tensor(c, 'mask') : null;
    const out = new Float32Array(B * NH * Tq * HS), lse = new Float32Array(B * NH * Tq);
    // Forward through a cache larger than Tk whose tail is NaN: it must never be read.
    native.attentionForward(out, lse, q, toCache(k, B * NKV, Tk, kvCap, HS), toCache(v, B * NKV, Tk, kvCap, HS),
      mask, B, NH, NKV, Tq, Tk, kvCap, HS, scale, causal, 0, 0);
    close(t, `${c.name}: out`, out, tensor(c, 'out'), FWD);
    close(t, `${c.name}: lse`, lse, tensor(c, 'lse'), FWD);

    const dq = new Float32Array(q.length).fill(NaN), dk = new Float32Array(k.length).fill(NaN);
    const dv = new Float32Array(v.length).fill(NaN);
    native.attentionBackward(dq, dk, dv, tensor(c, 'dout'), q, k, v, out, lse, mask, B, NH, NKV, Tq, Tk, HS,
      scale, causal, 0, 0);
    close(t, `${c.name}: dq`, dq, tensor(c, 'dq'), GRAD);
    close(t, `${c.name}: dk`, dk, tensor(c, 'dk'), GRAD);
    close(t, `${c.name}: dv`, dv, tensor(c, 'dv'), GRAD);
  }
});

t.test('rope matches transformers (rotate_half and GPT-J, partial rotary_dim)', async (t) => {
  for (const c of meta.cases) {
    if (c.op !== 'rope') continue;
    const { B, T, NH, HS, rotary_dim: rd, interleaved } = c;
    const x = tensor(c, 'x'), invFreq = tensor(c, 'inv_freq');
    const positions = Int32Array.from(tensor(c, 'positions'));
    const out = new Float32Array(x.length);
    native.rope(out, x, positions, invFreq, B, T, NH, HS, rd, interleaved, false);
    close(t, `${c.name}: out`, out, tensor(c, 'out'), ROPE);
    // The backward is the inverse rotation of dout; run it in place.
    const dx = tensor(c, 'dout');
    native.rope(dx, dx, positions, invFreq, B, T, NH, HS, rd, interleaved, true);
    close(t, `${c.name}: dx (inverse, in place)`, dx, tensor(c, 'dx'), ROPE);
  }
});

// ---- finite differences ----

t.test('attention gradients match central finite differences', async (t) => {
  // GQA, causal, one left-padded row; loss = sum(out * w) accumulated in double.
  const B = 2, NH = 4, NKV = 2, T = 6, HS = 8, scale = 1 / Math.sqrt(HS);
  const mask = leftPadMask(B, T, [0, 2]);
  const q = randn(B * NH * T * HS, 1), k = randn(B * NKV * T * HS, 2), v = randn(B * NKV * T * HS, 3);
  const w = randn(B * NH * T * HS, 4);
  const out = new Float32Array(q.length), lse = new Float32Array(B * NH * T);
  const loss = (): number => {
    native.attentionForward(out, lse, q, k, v, mask, B, NH, NKV, T, T, T, HS, scale, true, 0, 0);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * w[i];
    return s;
  };
  loss();
  const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
  native.attentionBackward(dq, dk, dv, w, q, k, v, out, lse, mask, B, NH, NKV, T, T, HS, scale, true, 0, 0);
  // float32 forward: rounding of the loss (~1e-6) over 2 eps dominates the error.
  const eps = 1e-2, tol: Tol = { rtol: 2e-2, atol: 2e-3 };
  for (const [name, x, g] of [['q', q, dq], ['k', k, dk], ['v', v, dv]] as const) {
    const fd: number[] = [], an: number[] = [];
    for (let i = 0; i < x.length; i += 7) {
      const x0 = x[i];
      x[i] = x0 + eps;
      const lp = loss();
      x[i] = x0 - eps;
      const lm = loss();
      x[i] = x0;
      fd.push((lp - lm) / (2 * eps));
      an.push(g[i]);
    }
    close(t, `d${name} vs finite differences (${fd.length} coordinates)`, an, fd, tol);
  }
  // Keys 0 and 1 of batch row 1 are padding: no gradient reaches them.
  const padded = [0, 1].flatMap((j) => [0, 1].map((g) => ((1 * NKV + g) * T + j) * HS));
  t.ok(padded.every((o) => dk.subarray(o, o + HS).every((x) => x === 0) && dv.subarray(o, o + HS).every((x) => x === 0)),
    'padded keys get zero dk and dv');
});

t.test('rope backward (inverse) matches finite differences', async (t) => {
  const B = 1, T = 3, NH = 2, HS = 12, rd = 8;
  const positions = Int32Array.from([0, 5, 700]);
  const invFreq = Float32Array.from({ length: rd / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / rd));
  for (const interleaved of [false, true]) {
    const x = randn(B * T * NH * HS, 10), w = randn(x.length, 11), out = new Float32Array(x.length);
    const loss = (): number => {
      native.rope(out, x, positions, invFreq, B, T, NH, HS, rd, interleaved, false);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * w[i];
      return s;
    };
    const g = Float32Array.from(w);
    native.rope(g, g, positions, invFreq, B, T, NH, HS, rd, interleaved, true);
    const fd: number[] = [];
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i];
      x[i] = x0 + 1e-2;
      const lp = loss();
      x[i] = x0 - 1e-2;
      const lm = loss();
      x[i] = x0;
      fd.push((lp - lm) / 2e-2);
    }
    close(t, `${interleaved ? 'GPT-J' : 'rotate_half'}: inverse rope is the gradient`, g, fd, { rtol: 1e-2, atol: 1e-3 });
  }
});

// ---- KV cache ----

t.test('KV-cache decode equals attention over the full sequence, row by row', async (t) => {
  const B = 2, NH = 4, NKV = 2, T = 11, HS = 24, kvCap = 32, scale = 1 / Math.sqrt(HS);
  const mask = leftPadMask(B, T, [0, 4]);
  const q = randn(B * NH * T * HS, 21), k = randn(B * NKV * T * HS, 22), v = randn(B * NKV * T * HS, 23);
  const full = new Float32Array(q.length), fullLse = new Float32Array(B * NH * T);
  native.attentionForward(full, fullLse, q, k, v, mask, B, NH, NKV, T, T, T, HS, scale, true, 0, 0);

  // The cache fills step by step; rows past the current length hold NaN.
  const kc = new Float32Array(B * NKV * kvCap * HS).fill(NaN), vc = new Float32Array(kc.length).fill(NaN);
  const append = (from: number, to: number): void => {
    for (let g = 0; g < B * NKV; g++) {
      kc.set(k.subarray((g * T + from) * HS, (g * T + to) * HS), (g * kvCap + from) * HS);
      vc.set(v.subarray((g * T + from) * HS, (g * T + to) * HS), (g * kvCap + from) * HS);
    }
  };
  // A prefill of 5 positions, then chunks of 2 (Tq < Tk), then single tokens.
  const steps: [number, number][] = [[0, 5], [5, 7], [7, 8], [8, 9], [9, 10], [10, 11]];
  const tol: Tol = { rtol: 1e-5, atol: 1e-6 };
  for (const [from, to] of steps) {
    append(from, to);
    const Tq = to - from, Tk = to;
    const qs = new Float32Array(B * NH * Tq * HS), want = new Float32Array(qs.length);
    const wantLse = new Float32Array(B * NH * Tq);
    for (let bh = 0; bh < B * NH; bh++) {
      qs.set(q.subarray((bh * T + from) * HS, (bh * T + to) * HS), bh * Tq * HS);
      want.set(full.subarray((bh * T + from) * HS, (bh * T + to) * HS), bh * Tq * HS);
      wantLse.set(fullLse.subarray(bh * T + from, bh * T + to), bh * Tq);
    }
    // The key mask covers the Tk keys seen so far.
    const m = new Float32Array(B * Tk);
    for (let b = 0; b < B; b++) m.set(mask.subarray(b * T, b * T + Tk), b * Tk);
    const out = new Float32Array(qs.length), lse = new Float32Array(B * NH * Tq);
    native.attentionForward(out, lse, qs, kc, vc, m, B, NH, NKV, Tq, Tk, kvCap, HS, scale, true, 0, 0);
    close(t, `rows ${from}..${to - 1} (Tq ${Tq}, Tk ${Tk}, kvCap ${kvCap}): out`, out, want, tol);
    close(t, `rows ${from}..${to - 1}: lse`, lse, wantLse, tol);
  }
});

// ---- threads ----

t.test('1 and 2 threads agree', async (t) => {
  // One kv head per batch row (fewer heads than threads: the backward splits key blocks).
  const B = 1, NH = 4, NKV = 1, T = 150, HS = 40, scale = 1 / Math.sqrt(HS);
  const mask = leftPadMask(B, T, [17]);
  const q = randn(B * NH * T * HS, 31), k = randn(B * NKV * T * HS, 32), v = randn(B * NKV * T * HS, 33);
  const dout = randn(q.length, 34);
  const run = (threads: number) => {
    native.setThreads(threads);
    const out = new Float32Array(q.length), lse = new Float32Array(B * NH * T);
    native.attentionForward(out, lse, q, k, v, mask, B, NH, NKV, T, T, T, HS, scale, true, 0, 0);
    const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
    native.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, mask, B, NH, NKV, T, T, HS, scale, true, 0, 0);
    const r = new Float32Array(B * T * NH * HS);
    native.rope(r, q, Int32Array.from({ length: B * T }, (_, i) => i), Float32Array.from([1, 0.1, 0.01, 0.001]),
      B, T, NH, HS, 8, false, false);
    return { out, lse, dq, dk, dv, r };
  };
  const one = run(1), two = run(2);
  native.setThreads(threadsAtStart);
  // Each output row or key block is computed whole by one thread: only dq's split sum may differ.
  const exact: Tol = { rtol: 0, atol: 0 };
  close(t, 'out', two.out, one.out, exact);
  close(t, 'lse', two.lse, one.lse, exact);
  close(t, 'dk', two.dk, one.dk, exact);
  close(t, 'dv', two.dv, one.dv, exact);
  close(t, 'dq (summed over key-block parts)', two.dq, one.dq, { rtol: 1e-5, atol: 1e-6 });
  close(t, 'rope', two.r, one.r, exact);
});

// ---- bad arguments ----

t.test('bad arguments throw errors naming the argument', async (t) => {
  const B = 1, NH = 4, NKV = 2, T = 3, HS = 8;
  const f = (n: number): Float32Array => new Float32Array(n);
  const q = f(B * NH * T * HS), kv = f(B * NKV * T * HS), lse = f(B * NH * T);
  const fwd = (over: Partial<Record<string, unknown>>) => () => {
    const a = { out: f(q.length), lse, q, k: kv, v: kv, mask: null, NH, NKV, Tk: T, kvCap: T, ...over };
    (native.attentionForward as (...args: unknown[]) => void)(a.out, a.lse, a.q, a.k, a.v, a.mask, B, a.NH,
      a.NKV, T, a.Tk, a.kvCap, HS, 0.5, true, 0, 0);
  };
  const cases: [string, () => void, string, RegExp][] = [
    ['short q', fwd({ q: f(q.length - 1) }), 'RangeError', /'q'/],
    ['short v cache', fwd({ v: f(kv.length - 1) }), 'RangeError', /'v'/],
    ['short lse', fwd({ lse: f(lse.length - 1) }), 'RangeError', /'lse'/],
    ['short key mask', fwd({ mask: f(B * T - 1) }), 'RangeError', /'keyMask'/],
    ['NKV not dividing NH', fwd({ NKV: 3, k: f(3 * T * HS), v: f(3 * T * HS) }), 'RangeError', /'NKV'/],
    ['kvCap < Tk', fwd({ kvCap: T - 1 }), 'RangeError', /'kvCap'/],
    ['Float64Array q', fwd({ q: new Float64Array(q.length) }), 'TypeError', /'q'/],
    ['backward short dk', () => native.attentionBackward(f(q.length), f(kv.length - 1), f(kv.length), f(q.length),
      q, kv, kv, f(q.length), lse, null, B, NH, NKV, T, T, HS, 0.5, true, 0, 0), 'RangeError', /'dk'/],
    ['rope odd rotaryDim', () => native.rope(f(q.length), q, new Int32Array(B * T), f(4), B, T, NH, HS, 7, false,
      false), 'RangeError', /'rotaryDim'/],
    ['rope short positions', () => native.rope(f(q.length), q, new Int32Array(B * T - 1), f(4), B, T, NH, HS, 8,
      false, false), 'RangeError', /'positions'/],
  ];
  for (const [name, fn, type, pattern] of cases) {
    const e = errorOf(fn);
    t.equal(e.name, type, `${name}: ${type}`);
    t.match(e.message, pattern, `${name}: the message names the argument (${e.message})`);
  }
});
