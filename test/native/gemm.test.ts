// native.gemm / gemmBatched against a float64 JavaScript reference, for every
// backend compiled in (the own kernels, and the BLAS where there is one): odd
// shapes that hit every edge of the micro-tiles and cache blocks, the streaming
// paths for few rows or columns, all four transposes, padded leading
// dimensions, alpha/beta, beta = 0 over NaN, batches with a broadcast operand,
// and 1 vs 2 threads.
//
// Tolerance: float32 products over K terms err by at most about K * 2^-24 *
// sum_k |a_ik b_kj| (the classic bound); blocked kernels do far better, so the
// test asks for 16 * 2^-24 * sum_k |a_ik b_kj| per element (independent of K),
// which a wrong index, a dropped K block or a beta applied twice exceeds by
// orders of magnitude.
import t from 'tap';
import { rng } from './close.js';
import { native } from '../../src/native.js';

const U = 2 ** -24;
const TOL_ULPS = 16;


function randomArray(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}

/** One operand as stored: `rows x cols` with row stride `ld` >= cols. */
interface Stored {
  data: Float32Array;
  ld: number;
}

function stored(rows: number, cols: number, pad: number, seed: number): Stored {
  const ld = cols + pad;
  return { data: randomArray(Math.max(0, (rows - 1) * ld + cols), seed), ld };
}

/** op(A)[i, k] and op(B)[k, j] of the stored operands. */
const opA = (A: Stored, tA: boolean, i: number, k: number) => (tA ? A.data[k * A.ld + i] : A.data[i * A.ld + k]);
const opB = (B: Stored, tB: boolean, k: number, j: number) => (tB ? B.data[j * B.ld + k] : B.data[k * B.ld + j]);

/** Reference product in float64 at the given (i, j) (all when `cells` is null): value and sum |a||b|. */
function reference(tA: boolean, tB: boolean, M: number, N: number, K: number, A: Stored, B: Stored,
  cells: Array<[number, number]> | null): { prod: Float64Array; abs: Float64Array } {
  const list = cells ?? Array.from({ length: M * N }, (_, x) => [Math.floor(x / N), x % N] as [number, number]);
  const prod = new Float64Array(list.length), abs = new Float64Array(list.length);
  list.forEach(([i, j], x) => {
    let s = 0, m = 0;
    for (let k = 0; k < K; k++) {
      const p = opA(A, tA, i, k) * opB(B, tB, k, j);
      s += p;
      m += Math.abs(p);
    }
    prod[x] = s;
    abs[x] = m;
  });
  return { prod, abs };
}

/** First element of C (row stride ldc) off the expected alpha*prod + beta*C0, or null. */
function mismatch(C: Float32Array, ldc: number, N: number, ref: { prod: Float64Array; abs: Float64Array },
  alpha: number, beta: number, C0: Float32Array | null, cells: Array<[number, number]> | null): string | null {
  const count = ref.prod.length;
  for (let x = 0; x < count; x++) {
    const [i, j] = cells ? cells[x] : [Math.floor(x / N), x % N];
    const old = beta === 0 || !C0 ? 0 : beta * C0[i * ldc + j];
    const want = alpha * ref.prod[x] + old;
    const tol = TOL_ULPS * U * (Math.abs(alpha) * ref.abs[x] + Math.abs(old)) + 1e-30;
    const got = C[i * ldc + j];
    if (!(Math.abs(got - want) <= tol)) {
      return `C[${i},${j}] = ${got}, expected ${want} (|diff| ${Math.abs(got - want)}, tol ${tol})`;
    }
  }
  return null;
}

const backends: Array<'own' | 'blas'> = native.capability.blas === 'own' ? ['own'] : ['own', 'blas'];
const threadCounts = [1, 2];

function withSetup<T>(backend: 'own' | 'blas', threads: number, fn: () => T): T {
  native.setGemmBackend(backend);
  native.setThreads(threads);
  return fn();
}

// Shapes [M, N, K]: single element; odd sizes; few rows (decode, streaming path);
// few columns (streaming path on C^T); several micro-tiles with ragged edges; K
// past one cache block (384) so later blocks accumulate onto the first.
const shapes: Array<[number, number, number]> = [
  [1, 1, 1], [37, 53, 19], [1, 300, 70], [3, 517, 33], [8, 64, 200], [130, 7, 129], [9, 9, 9],
  [65, 97, 385], [200, 300, 130], [13, 1, 40],
];

t.test('gemm matches a float64 reference: every transpose, alpha/beta, beta=0 over NaN', async (t) => {
  let seed = 1;
  for (const [M, N, K] of shapes) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        // Padded leading dimensions on every other case, tight on the rest.
        const pad = (M + N + K + (tA ? 1 : 0) + (tB ? 2 : 0)) % 2 === 0 ? 3 : 0;
        const A = tA ? stored(K, M, pad, seed++) : stored(M, K, pad, seed++);
        const B = tB ? stored(N, K, pad, seed++) : stored(K, N, pad, seed++);
        const ldc = N + pad;
        const C0 = randomArray((M - 1) * ldc + N, seed++);
        const ref = reference(tA, tB, M, N, K, A, B, null);
        for (const backend of backends) {
          for (const threads of threadCounts) {
            const what = `${backend} ${threads}t ${M}x${N}x${K} tA=${tA} tB=${tB} pad=${pad}`;
            const C = C0.slice();
            withSetup(backend, threads, () =>
              native.gemm(tA, tB, M, N, K, 0.5, A.data, A.ld, B.data, B.ld, -2, C, ldc));
            const bad = mismatch(C, ldc, N, ref, 0.5, -2, C0, null);
            if (bad) t.fail(`${what} alpha=0.5 beta=-2: ${bad}`);
            // beta = 0: C's old contents, NaN here, must not leak into the result.
            const D = new Float32Array(C0.length).fill(NaN);
            withSetup(backend, threads, () =>
              native.gemm(tA, tB, M, N, K, 1, A.data, A.ld, B.data, B.ld, 0, D, ldc));
            const badNaN = mismatch(D, ldc, N, ref, 1, 0, null, null);
            if (badNaN) t.fail(`${what} beta=0 over NaN: ${badNaN}`);
            // Padding between rows of C is never written.
            for (let i = 0; i + 1 < M && pad > 0; i++) {
              for (let j = N; j < ldc; j++) {
                if (C[i * ldc + j] !== C0[i * ldc + j]) t.fail(`${what}: wrote C[${i},${j}] in the row padding`);
              }
            }
          }
        }
      }
    }
  }
  t.pass(`${shapes.length} shapes x 4 transposes x ${backends.join('/')} x 1-2 threads`);
});

t.test('gemm at GPT-2 size (256x768x768), checked on a sample of elements', async (t) => {
  const M = 256, N = 768, K = 768;
  const r = rng(99);
  const cells: Array<[number, number]> = [[0, 0], [M - 1, N - 1], [M - 1, 0], [0, N - 1]];
  while (cells.length < 300) cells.push([Math.floor(r() * M), Math.floor(r() * N)]);
  for (const [tA, tB] of [[false, true], [false, false], [true, false]] as const) {
    const A = tA ? stored(K, M, 0, 11) : stored(M, K, 0, 11);
    const B = tB ? stored(N, K, 0, 12) : stored(K, N, 0, 12);
    const ref = reference(tA, tB, M, N, K, A, B, cells);
    for (const backend of backends) {
      for (const threads of threadCounts) {
        const C = new Float32Array(M * N).fill(NaN);
        withSetup(backend, threads, () => native.gemm(tA, tB, M, N, K, 1, A.data, A.ld, B.data, B.ld, 0, C, N));
        const bad = mismatch(C, N, N, ref, 1, 0, null, cells);
        t.equal(bad, null, `${backend} ${threads}t tA=${tA} tB=${tB}`);
      }
    }
  }
});

t.test('K = 0 or alpha = 0 scale C by beta; beta = 0 then zeroes it', async (t) => {
  const M = 5, N = 7;
  const A = new Float32Array(M * 3).fill(NaN), B = new Float32Array(3 * N).fill(1);
  for (const backend of backends) {
    const C = Float32Array.from({ length: M * N }, (_, i) => i);
    withSetup(backend, 2, () => native.gemm(false, false, M, N, 0, 1, A, 3, B, N, 2, C, N));
    t.same(Array.from(C), Array.from({ length: M * N }, (_, i) => 2 * i), `${backend}: K = 0, beta = 2`);
    const D = new Float32Array(M * N).fill(NaN);
    withSetup(backend, 2, () => native.gemm(false, false, M, N, 0, 1, A, 3, B, N, 0, D, N));
    t.same(Array.from(D), new Array(M * N).fill(0), `${backend}: K = 0, beta = 0 over NaN`);
  }
});

t.test('1 and 2 threads agree within rounding', async (t) => {
  for (const [M, N, K, tA, tB] of [[300, 700, 500, false, true], [4, 2000, 300, false, false],
    [1000, 5, 64, true, false]] as const) {
    const A = tA ? stored(K, M, 0, 21) : stored(M, K, 0, 21);
    const B = tB ? stored(N, K, 0, 22) : stored(K, N, 0, 22);
    for (const backend of backends) {
      const [one, two] = threadCounts.map((threads) => {
        const C = new Float32Array(M * N);
        withSetup(backend, threads, () => native.gemm(tA, tB, M, N, K, 1, A.data, A.ld, B.data, B.ld, 0, C, N));
        return C;
      });
      let worst = 0, scale = 0;
      for (let i = 0; i < one.length; i++) {
        worst = Math.max(worst, Math.abs(one[i] - two[i]));
        scale = Math.max(scale, Math.abs(one[i]));
      }
      t.ok(worst <= TOL_ULPS * U * scale * Math.sqrt(K), `${backend} ${M}x${N}x${K}: max |1t - 2t| ${worst} (max |C| ${scale})`);
    }
  }
});

t.test('gemmBatched: per-matrix strides, a broadcast operand, beta = 0 over NaN', async (t) => {
  // batch 4 runs one matrix per thread with 2 threads; batch 3 runs threaded products in turn.
  for (const batch of [3, 4]) {
    for (const [M, N, K, tA, tB, strideBZero] of [[33, 17, 20, false, true, false], [6, 40, 12, true, false, true],
      [16, 16, 64, false, false, true]] as const) {
      const aRows = tA ? K : M, aCols = tA ? M : K, bRows = tB ? N : K, bCols = tB ? K : N;
      const strideA = aRows * aCols + 5, strideB = strideBZero ? 0 : bRows * bCols + 2, strideC = M * N + 3;
      const Aall = randomArray((batch - 1) * strideA + aRows * aCols, 31);
      const Ball = randomArray(strideBZero ? bRows * bCols : (batch - 1) * strideB + bRows * bCols, 32);
      for (const backend of backends) {
        for (const threads of threadCounts) {
          const C = new Float32Array((batch - 1) * strideC + M * N).fill(NaN);
          withSetup(backend, threads, () => native.gemmBatched(tA, tB, M, N, K, 1.5, Aall, aCols, strideA,
            Ball, bCols, strideB, 0, C, N, strideC, batch));
          for (let b = 0; b < batch; b++) {
            const A = { data: Aall.subarray(b * strideA, b * strideA + aRows * aCols), ld: aCols };
            const B = { data: Ball.subarray(b * strideB, b * strideB + bRows * bCols), ld: bCols };
            const ref = reference(tA, tB, M, N, K, A, B, null);
            const bad = mismatch(C.subarray(b * strideC, b * strideC + M * N), N, N, ref, 1.5, 0, null, null);
            if (bad) t.fail(`${backend} ${threads}t batch ${b}/${batch} ${M}x${N}x${K} tA=${tA} tB=${tB}: ${bad}`);
            if (b + 1 < batch && !Number.isNaN(C[b * strideC + M * N])) t.fail('wrote between batch matrices of C');
          }
        }
      }
    }
  }
  t.pass('batched products checked');
});
