// native.sampleRows (native/sampling.cc), temperature sampling of one token per
// row, against a float64 JavaScript reference: the same token wherever the
// draw is not within rounding of a boundary between two tokens; exact
// frequencies under stratified draws; -inf logits never chosen; the same
// tokens on 1 and 2 threads.
import t from 'tap';
import { native } from '../../src/native.js';
import { Rng } from '../../src/tensor/index.js';

/** The reference: cumulative weights exp((x - max) / T) in float64, and the token a draw u picks. */
function reference(row: Float32Array, temp: number, u: number): { token: number; margin: number } {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  const w = Array.from(row, (x) => (x === -Infinity ? 0 : Math.exp((x - max) / temp)));
  const z = w.reduce((a, b) => a + b, 0);
  let cum = 0;
  for (let v = 0; v < w.length; v++) {
    if (w[v] === 0) continue;
    const before = cum;
    cum += w[v] / z;
    // How far u is from either end of this token's interval, relative to the whole.
    if (u < cum) return { token: v, margin: Math.min(u - before, cum - u) };
  }
  let last = 0;
  w.forEach((x, v) => { if (x > 0) last = v; });
  return { token: last, margin: 0 };
}

function draw(logits: Float32Array, uniforms: Float64Array, B: number, V: number, temp: number): Int32Array {
  const out = new Int32Array(B);
  native.sampleRows(out, logits, uniforms, B, V, temp);
  return out;
}

t.test('the reference token wherever the draw is clear of a boundary', async (t) => {
  const rng = new Rng(3);
  for (const [B, V, temp] of [[8, 8192, 1], [5, 37, 0.7], [3, 1000, 2], [1, 1, 1]] as const) {
    const logits = Float32Array.from({ length: B * V }, () => (rng.uniform() - 0.5) * 12);
    let checked = 0, mismatched = 0;
    for (let trial = 0; trial < 50; trial++) {
      const u = Float64Array.from({ length: B }, () => rng.uniform());
      const got = draw(logits, u, B, V, temp);
      for (let b = 0; b < B; b++) {
        const want = reference(logits.subarray(b * V, (b + 1) * V), temp, u[b]);
        // Float weights carry about 1e-7 relative error each; a draw closer than 1e-5 to a boundary may go either way.
        if (want.margin < 1e-5) continue;
        checked++;
        if (got[b] !== want.token) mismatched++;
      }
    }
    t.equal(mismatched, 0, `B ${B}, V ${V}, temperature ${temp}: ${checked} clear draws, none differ`);
    t.ok(checked > 40 * B, 'most draws are clear of a boundary');
  }
});

t.test('stratified draws give each token its probability exactly (to the stratum)', async (t) => {
  const logits = Float32Array.from([0, Math.log(2), Math.log(3), -Infinity, Math.log(4)]); // weights 1, 2, 3, 0, 4
  const N = 10_000;
  const u = Float64Array.from({ length: N }, (_, i) => (i + 0.5) / N);
  const counts = new Array(5).fill(0);
  for (const tok of draw(new Float32Array(N * 5).map((_, i) => logits[i % 5]), u, N, 5, 1)) counts[tok]++;
  t.same(counts, [1000, 2000, 3000, 0, 4000], 'weights 1:2:3:0:4 of 10');
  // Temperature 2 flattens them to sqrt: 1, 1.414, 1.732, 0, 2.
  const c2 = new Array(5).fill(0);
  for (const tok of draw(new Float32Array(N * 5).map((_, i) => logits[i % 5]), u, N, 5, 2)) c2[tok]++;
  const w2 = [1, Math.SQRT2, Math.sqrt(3), 0, 2], z2 = w2.reduce((a, b) => a + b, 0);
  t.ok(c2.every((c, v) => Math.abs(c - (N * w2[v]) / z2) <= 1), `temperature 2: ${c2.join(', ')}`);
});

t.test('-inf logits are never chosen; an all -inf row gives 0; a tiny temperature is greedy', async (t) => {
  const V = 64;
  const row = new Float32Array(V).fill(-Infinity);
  row[17] = 0.5;
  row[40] = 0.4;
  const u = Float64Array.from({ length: 200 }, (_, i) => i / 200);
  const rows = new Float32Array(200 * V).map((_, i) => row[i % V]);
  t.ok(draw(rows, u, 200, V, 1).every((tok) => tok === 17 || tok === 40));
  t.same([...draw(new Float32Array(V).fill(-Infinity), new Float64Array([0.3]), 1, V, 1)], [0]);
  t.ok(draw(rows, u, 200, V, 1e-4).every((tok) => tok === 17), 'temperature 1e-4: always the largest');
});

t.test('the same tokens on 1 and 2 threads', async (t) => {
  const rng = new Rng(9);
  const B = 16, V = 8192; // past the size where rows go to several threads
  const logits = Float32Array.from({ length: B * V }, () => (rng.uniform() - 0.5) * 8);
  const u = Float64Array.from({ length: B }, () => rng.uniform());
  const before = native.getThreads();
  try {
    native.setThreads(1);
    const one = draw(logits, u, B, V, 1);
    native.setThreads(2);
    t.same([...draw(logits, u, B, V, 1)], [...one]);
  } finally {
    native.setThreads(before);
  }
});
