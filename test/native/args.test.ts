// Bad arguments from JavaScript throw a TypeError or RangeError naming the function
// and the argument; none reaches a kernel (a crash would end this process and fail
// the test). One row per misuse.
import t from 'tap';
import { native } from '../../src/native.js';

const f = (n: number) => new Float32Array(n);
// The raw addon, for calls that TypeScript's types would reject.
const raw = native as unknown as Record<string, (...args: unknown[]) => unknown>;

interface Bad {
  what: string;
  call: () => unknown;
  error: typeof TypeError | typeof RangeError;
  message: RegExp;
}

const bad: Bad[] = [
  { what: 'wrong arity', call: () => raw.add(f(4), f(4)), error: TypeError, message: /^add: expects 3 arguments, got 2$/ },
  { what: 'Int32Array for a float array', call: () => raw.add(f(4), f(4), new Int32Array(4)), error: TypeError,
    message: /^add: argument 'b' must be a Float32Array, got Int32Array$/ },
  { what: 'Float64Array', call: () => raw.exp(new Float64Array(4), f(4)), error: TypeError, message: /^exp: argument 'out' must be a Float32Array, got Float64Array$/ },
  { what: 'plain array', call: () => raw.relu(f(2), [1, 2]), error: TypeError, message: /^relu: argument 'a' must be a Float32Array, got Array$/ },
  { what: 'short output', call: () => native.add(f(3), f(4), f(4)), error: RangeError,
    message: /^add: argument 'out' must have at least 4 elements, got 3$/ },
  { what: 'short weight', call: () => native.layerNormForward(f(4 * 768), f(4), f(4), f(4 * 768), f(512), null, 4, 768, 1e-5),
    error: RangeError, message: /^layerNormForward: argument 'weight' must have at least 768 elements, got 512$/ },
  { what: 'null weight', call: () => raw.layerNormForward(f(8), f(2), f(2), f(8), null, null, 2, 4, 1e-5), error: TypeError,
    message: /^layerNormForward: argument 'weight' must be a Float32Array, got null$/ },
  { what: 'undefined bias', call: () => raw.layerNormForward(f(8), f(2), f(2), f(8), f(4), undefined, 2, 4, 1e-5),
    error: TypeError, message: /argument 'bias' must be a Float32Array or null, got undefined/ },
  { what: 'negative dimension', call: () => native.softmaxForward(f(4), f(4), -1, 4), error: RangeError,
    message: /^softmaxForward: argument 'N' must be an integer/ },
  { what: 'fractional dimension', call: () => native.softmaxForward(f(4), f(4), 1.5, 2), error: RangeError, message: /argument 'N'/ },
  { what: 'NaN dimension', call: () => native.sumRows(f(4), f(4), NaN, 4), error: RangeError, message: /argument 'N'/ },
  { what: 'string dimension', call: () => raw.sumRows(f(4), f(4), '1', 4), error: TypeError, message: /^sumRows: argument 'N' must be a number, got string$/ },
  { what: 'overflowing dimensions', call: () => native.softmaxForward(f(4), f(4), 2 ** 40, 2 ** 40), error: RangeError, message: /too large/ },
  { what: 'boolean as number flag', call: () => raw.gelu(f(4), f(4), 1), error: TypeError, message: /^gelu: argument 'approximate' must be a boolean/ },
  { what: 'gemm short A', call: () => native.gemm(false, false, 4, 4, 4, 1, f(15), 4, f(16), 4, 0, f(16), 4), error: RangeError,
    message: /^gemm: argument 'A' must have at least 16 elements, got 15$/ },
  { what: 'gemm transposed A short', call: () => native.gemm(true, false, 2, 3, 5, 1, f(9), 2, f(15), 3, 0, f(6), 3), error: RangeError,
    message: /argument 'A' must have at least 10 elements/ },
  { what: 'gemm lda too small', call: () => native.gemm(false, false, 4, 4, 4, 1, f(16), 3, f(16), 4, 0, f(16), 4), error: RangeError,
    message: /^gemm: argument 'lda' must be at least 4, got 3$/ },
  { what: 'gemmBatched short B', call: () => native.gemmBatched(false, false, 2, 2, 2, 1, f(8), 2, 4, f(7), 2, 4, 0, f(8), 2, 4, 2),
    error: RangeError, message: /^gemmBatched: argument 'B' must have at least 8 elements, got 7$/ },
  { what: 'gemmBatched overlapping outputs', call: () => native.gemmBatched(false, false, 2, 2, 2, 1, f(8), 2, 4, f(8), 2, 4, 0, f(8), 2, 0, 2),
    error: RangeError, message: /argument 'strideC' must be at least 4/ },
  { what: 'gather index out of range', call: () => native.gatherRows(f(8), f(12), new Int32Array([0, 3]), 4), error: RangeError,
    message: /^gatherRows: argument 'idx'\[1\] = 3 is out of range \[0, 3\)$/ },
  { what: 'scatter negative index', call: () => native.scatterAddRows(f(12), f(8), new Int32Array([-1, 0]), 3, 4), error: RangeError,
    message: /argument 'idx'\[0\] = -1 is out of range/ },
  { what: 'uniform of 1', call: () => native.sampleRows(new Int32Array(1), f(4), new Float64Array([1]), 1, 4, 1), error: RangeError,
    message: /^sampleRows: argument 'uniforms' must hold numbers in \[0, 1\), got 1 at 0$/ },
  { what: 'zero temperature', call: () => native.sampleRows(new Int32Array(1), f(4), new Float64Array(1), 1, 4, 0), error: RangeError,
    message: /^sampleRows: argument 'temperature' must be > 0, got 0$/ },
  { what: 'uniforms as Float32Array', call: () => raw.sampleRows(new Int32Array(1), f(4), f(1), 1, 4, 1), error: TypeError,
    message: /^sampleRows: argument 'uniforms' must be a Float64Array, got Float32Array$/ },
  { what: 'short logits for sampling', call: () => native.sampleRows(new Int32Array(2), f(7), new Float64Array(2), 2, 4, 1), error: RangeError,
    message: /^sampleRows: argument 'logits' must have at least 8 elements, got 7$/ },
  { what: 'label beyond V', call: () => native.logprobsForward(f(2), f(2), f(10), new Int32Array([1, 5]), 2, 5), error: RangeError,
    message: /^logprobsForward: argument 'labels'\[1\] = 5 is out of range/ },
  { what: 'logprobs short labels', call: () => native.logprobsBackward(f(10), f(2), f(10), f(2), new Int32Array(1), 2, 5), error: RangeError,
    message: /argument 'labels' must have at least 2 elements/ },
  { what: 'permute not a permutation', call: () => native.permute(f(6), f(6), [2, 3], [0, 0]), error: RangeError, message: /^permute: argument 'perm' must be a permutation/ },
  { what: 'permute too many dims', call: () => native.permute(f(1), f(1), [1, 1, 1, 1, 1, 1, 1], [0, 1, 2, 3, 4, 5, 6]), error: RangeError, message: /1 to 6 dims/ },
  { what: 'permute short input', call: () => native.permute(f(6), f(5), [2, 3], [1, 0]), error: RangeError, message: /argument 'inp' must have at least 6/ },
  { what: 'attention heads', call: () => native.attentionForward(f(48), f(6), f(48), f(48), f(48), null, 1, 3, 2, 2, 2, 2, 8, 1, true, 0, 0),
    error: RangeError, message: /^attentionForward: argument 'NKV' must be at least 1 and divide NH = 3/ },
  { what: 'attention kvCap < Tk', call: () => native.attentionForward(f(16), f(2), f(16), f(32), f(32), null, 1, 1, 1, 2, 4, 3, 8, 1, true, 0, 0),
    error: RangeError, message: /argument 'kvCap' must be at least Tk = 4/ },
  { what: 'attention short k', call: () => native.attentionForward(f(16), f(2), f(16), f(31), f(32), null, 1, 1, 1, 2, 4, 4, 8, 1, true, 0, 0),
    error: RangeError, message: /argument 'k' must have at least 32 elements, got 31/ },
  { what: 'attention short mask', call: () => native.attentionForward(f(16), f(2), f(16), f(32), f(32), f(3), 1, 1, 1, 2, 4, 4, 8, 1, true, 0, 0),
    error: RangeError, message: /argument 'keyMask' must have at least 4 elements/ },
  { what: 'attentionBackward short dv', call: () => native.attentionBackward(f(16), f(32), f(31), f(16), f(16), f(32), f(32), f(16), f(2), null, 1, 1, 1, 2, 4, 8, 1, true, 0, 0),
    error: RangeError, message: /^attentionBackward: argument 'dv' must have at least 32/ },
  { what: 'rope odd rotary dim', call: () => native.rope(f(8), f(8), new Int32Array(1), f(2), 1, 1, 1, 8, 3, false, false), error: RangeError,
    message: /^rope: argument 'rotaryDim' must be even and at most HS = 8, got 3$/ },
  { what: 'rope short invFreq', call: () => native.rope(f(8), f(8), new Int32Array(1), f(1), 1, 1, 1, 8, 4, false, false), error: RangeError,
    message: /argument 'invFreq' must have at least 2 elements/ },
  { what: 'adamw step 0', call: () => native.adamw(f(4), f(4), f(4), f(4), 1e-3, 0.9, 0.999, 1e-8, 0, 0), error: RangeError, message: /^adamw: argument 'step' must be at least 1/ },
  { what: 'adamw beta1 = 1', call: () => native.adamw(f(4), f(4), f(4), f(4), 1e-3, 1, 0.999, 1e-8, 0, 1), error: RangeError, message: /argument 'beta1' must be in \[0, 1\)/ },
  { what: 'adamw short state', call: () => native.adamw(f(4), f(4), f(3), f(4), 1e-3, 0.9, 0.999, 1e-8, 0, 1), error: RangeError, message: /argument 'm' must have at least 4/ },
  { what: 'adamw NaN lr', call: () => native.adamw(f(4), f(4), f(4), f(4), NaN, 0.9, 0.999, 1e-8, 0, 1), error: RangeError, message: /argument 'lr' must be finite/ },
  { what: 'f16 input not Uint16Array', call: () => raw.f16ToF32(f(4), f(4)), error: TypeError, message: /^f16ToF32: argument 'inp' must be a Uint16Array, got Float32Array$/ },
  { what: 'bf16 output short', call: () => native.f32ToBf16(new Uint16Array(3), f(4)), error: RangeError, message: /argument 'out' must have at least 4/ },
  { what: 'dropout p > 1', call: () => native.dropout(f(4), f(4), f(4), 1.5, 1), error: RangeError, message: /^dropout: argument 'p' must be in \[0, 1\]/ },
  { what: 'dropout negative seed', call: () => native.dropout(f(4), f(4), f(4), 0.5, -1), error: RangeError, message: /argument 'seed'/ },
  { what: 'setThreads(0)', call: () => native.setThreads(0), error: RangeError, message: /^setThreads: argument 'n' must be in \[1, 1024\]/ },
  { what: 'unknown gemm backend', call: () => raw.setGemmBackend('mkl'), error: RangeError, message: /must be 'blas' or 'own', got 'mkl'/ },
  { what: 'eps NaN', call: () => native.rmsNormForward(f(4), f(1), f(4), f(4), 1, 4, NaN), error: RangeError, message: /^rmsNormForward: argument 'eps' must be finite/ },
];

for (const b of bad) {
  t.test(b.what, async (t) => {
    t.throws(b.call, b.error, `throws ${b.error.name}`);
    t.throws(b.call, { message: b.message }, `message matches ${b.message}`);
  });
}

t.test('an exception thrown while reading an argument propagates unchanged', async (t) => {
  const shape = [2, 3];
  Object.defineProperty(shape, 0, { get() { throw new Error('boom from a getter'); } });
  t.throws(() => native.permute(f(6), f(6), shape, [1, 0]), { message: 'boom from a getter' });
  t.doesNotThrow(() => native.permute(f(6), f(6), [2, 3], [1, 0]), 'the addon works afterwards');
});

t.test('allowed edge cases do not throw', async (t) => {
  t.doesNotThrow(() => native.layerNormForward(f(8), f(2), f(2), f(8), f(4), null, 2, 4, 1e-5), 'null bias');
  t.doesNotThrow(() => native.add(f(0), f(0), f(0)), 'empty arrays');
  t.doesNotThrow(() => native.softmaxForward(f(0), f(0), 0, 5), 'zero rows');
  t.doesNotThrow(() => native.gemm(false, false, 0, 0, 0, 1, f(0), 1, f(0), 1, 0, f(0), 1), 'empty gemm');
  t.doesNotThrow(() => native.logprobsForward(f(1), f(1), f(5), new Int32Array([-1]), 1, 5), 'ignored label');
  const out = f(4);
  native.add(out, new Float32Array([1, 2, 3, 4]), new Float32Array([1, 1, 1, 1, 9]));
  t.same(Array.from(out), [2, 3, 4, 5], 'longer arrays are fine: n is a.length');
});

t.test('capability says what was compiled in', async (t) => {
  const c = native.capability;
  t.match(c.blas, /^(openblas|blis|own)$/);
  t.match(c.simd, /^(avx512|avx2|scalar)$/);
  t.equal(typeof c.openmp, 'boolean');
  t.equal(c.cuda, false);
  t.ok(Object.isFrozen(c), 'frozen');
  t.match(native.getGemmBackend(), /^(openblas|blis|own)$/);
});
