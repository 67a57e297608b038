// Golden tests per family against Hugging Face transformers itself (fixtures from
// scripts/fixtures/models.py): logits of unpadded, left- and right-padded batches,
// per-token log-probs, the loss, parameter gradients, and greedy generate() ids and
// log-probs for an unpadded and a left-padded batch, with and without the KV cache.
// Tolerances (float32 on both sides): logits and log-probs 1e-4 abs, loss 1e-5 abs,
// gradients 1e-4 abs + 1e-3 relative to the tensor's largest entry.
import t from 'tap';
import { hfTensors, loadModel } from '../../src/models/checkpoint.js';
import { generate } from '../../src/models/generate.js';
import { fromI32, noGrad, tidy, mean, neg, type Tensor } from '../../src/tensor/index.js';
import { VARIANTS, flat, loadExpected, maxDiff, variantDir } from './fixtures.js';

const LOGITS_TOL = 1e-4;

/** Rows of `a` and `b` ([B, T, V] flat) compared only where mask is 1. */
function maskedDiff(a: Float32Array, b: Float32Array, mask: number[][], V: number): number {
  let max = 0;
  mask.flat().forEach((m, i) => {
    if (!m) return;
    max = Math.max(max, maxDiff(a.subarray(i * V, (i + 1) * V), b.subarray(i * V, (i + 1) * V)).max);
  });
  return max;
}

for (const v of VARIANTS) {
  t.test(`${v}: matches transformers`, (t) => {
    const e = loadExpected(v);
    const model = loadModel(variantDir(v));
    t.teardown(() => model.dispose());
    const { B, T } = e;
    const V = model.cfg.vocabSize;
    const ids = fromI32(flat(e.ids), [B, T]);

    noGrad(() => tidy(() => {
      const logits = model.forward(ids);
      const d = maxDiff(logits.f32, e.arrays.get('logits')!.data);
      t.ok(d.max <= LOGITS_TOL, `logits max abs diff ${d.max.toExponential(2)} (ours ${logits.f32[d.at]}, transformers ${e.arrays.get('logits')!.data[d.at]})`);
      const left = model.forward(fromI32(flat(e.left), [B, T]), { mask: flat(e.left_mask) });
      const dl = maskedDiff(left.f32, e.arrays.get('logits_left')!.data, e.left_mask, V);
      t.ok(dl <= LOGITS_TOL, `left-padded logits max abs diff ${dl.toExponential(2)}`);
      const right = model.forward(fromI32(flat(e.right), [B, T]), { mask: flat(e.right_mask) });
      const dr = maskedDiff(right.f32, e.arrays.get('logits_right')!.data, e.right_mask, V);
      t.ok(dr <= LOGITS_TOL, `right-padded logits max abs diff ${dr.toExponential(2)}`);
      // Right-padded loss: mean over next tokens that are real.
      const lp = model.tokenLogprobs(fromI32(flat(e.right), [B, T]), { mask: flat(e.right_mask) });
      let sum = 0, count = 0;
      for (let b = 0; b < B; b++) for (let s = 0; s < T - 1; s++) if (e.right_mask[b][s + 1]) { sum -= lp.f32[b * (T - 1) + s]; count++; }
      t.ok(Math.abs(sum / count - e.arrays.get('loss_right')!.data[0]) <= 1e-5, `right-padded loss ${sum / count} vs ${e.arrays.get('loss_right')!.data[0]}`);
    }));

    // Training forward: per-token log-probs, loss, gradients.
    const loss = tidy(() => {
      const lp = model.tokenLogprobs(ids);
      const d = maxDiff(lp.f32, e.arrays.get('logprobs')!.data);
      t.ok(d.max <= LOGITS_TOL, `per-token log-probs max abs diff ${d.max.toExponential(2)}`);
      return neg(mean(lp));
    });
    t.ok(Math.abs(loss.item() - e.arrays.get('loss')!.data[0]) <= 1e-5, `loss ${loss.item()} vs transformers ${e.arrays.get('loss')!.data[0]}`);
    loss.backward();
    loss.dispose();
    const grads = new Map([...model.params].map(([n, p]) => [n, { shape: p.shape.slice(), data: (p.grad as Tensor | null)?.f32 ?? new Float32Array(p.size) }]));
    const hf = new Map(hfTensors(model.cfg, grads).map((x) => [x.name, x.data]));
    for (const name of e.grads) {
      const ours = hf.get(name);
      const ref = e.arrays.get(`grad.${name}`)!.data;
      if (!ours) { t.fail(`no gradient for ${name}`); continue; }
      const scale = maxDiff(ref, new Float32Array(ref.length)).max;
      const d = maxDiff(ours, ref);
      t.ok(d.max <= 1e-4 + 1e-3 * scale, `grad ${name}: max abs diff ${d.max.toExponential(2)} (largest entry ${scale.toExponential(2)})`);
    }
    for (const p of model.params.values()) { p.grad?.dispose(); p.grad = null; }

    // Greedy generation, unpadded and left-padded, with and without the KV cache.
    const n = e.new_tokens;
    const cases: [string, number[][], number[][] | null, number[][], string][] = [
      ['unpadded', e.ids, null, e.gen, 'gen_logprobs'],
      ['left-padded', e.left, e.left_mask, e.gen_left, 'gen_logprobs_left'],
    ];
    for (const [what, prompt, mask, want, lpName] of cases) {
      for (const useCache of [true, false]) {
        const r = generate(model, flat(prompt), mask ? flat(mask) : null, B, T, { maxNewTokens: n, eosTokenId: null, padTokenId: e.pad_id, useCache, logprobs: true });
        t.same(Array.from(r.sequences), want.flat(), `${what} greedy ids equal transformers' generate() (${useCache ? 'KV cache' : 'no cache'})`);
        const d = maxDiff(r.logprobs!, e.arrays.get(lpName)!.data);
        t.ok(d.max <= LOGITS_TOL, `${what} generated log-probs max abs diff ${d.max.toExponential(2)} (${useCache ? 'KV cache' : 'no cache'})`);
      }
    }
    t.end();
  });
}
