// Gradient checkpointing per block (DeepSpeed-Chat's --gradient_checkpointing)
// leaves training unchanged: on a left-padded batch with dropout on (seeded),
// the loss and every parameter gradient equal those of the plain forward, for
// families that exercise learned positions, OPT's mask-derived positions and
// post-norm, NeoX's parallel residual with partial rotary, LLaMA's grouped
// rotary attention, and LoRA adapters (whose dropout shares the model's
// generator). The loss is made inside a tidy and back-propagated after it,
// so the recompute must not rely on the caller keeping the key mask alive.
import t from 'tap';
import { loadModel } from '../../src/models/checkpoint.js';
import { addLora } from '../../src/models/lora.js';
import type { Transformer } from '../../src/models/transformer.js';
import { engineOptions } from '../../actors/startup.js';
import { Rng, allocator, fromI32, maskedMean, neg, tensor, tidy, zeroGrad } from '../../src/tensor/index.js';
import { variantDir } from './fixtures.js';

const [B, T] = [2, 8];
const ids = fromI32(Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 29) % 120)), [B, T]);
// Row 1 is left-padded by 3.
const mask = Int32Array.from({ length: B * T }, (_, i) => (i >= T && i < T + 3 ? 0 : 1));

function trainStep(m: Transformer): { loss: number; grads: Map<string, Float32Array> } {
  const loss = tidy(() => {
    const lp = m.tokenLogprobs(ids, { mask, train: true });
    const lm = new Float32Array(B * (T - 1));
    for (let b = 0; b < B; b++) for (let j = 0; j < T - 1; j++) lm[b * (T - 1) + j] = mask[b * T + j + 1];
    return neg(maskedMean(lp, tensor(lm, [B, T - 1])));
  });
  loss.backward();
  const grads = new Map(m.namedParameters().map(([n, p]) => [n, Float32Array.from(p.grad?.f32 ?? [])]));
  const value = loss.item();
  loss.dispose();
  return { loss: value, grads };
}

function model(variant: string, ckpt: boolean, lora: boolean): Transformer {
  const m = loadModel(variantDir(variant), { seed: 7 });
  m.setDropout(0.1);
  if (lora) addLora(m, { moduleName: '.', rank: 4, alpha: 8, dropout: 0.1, seed: 3 });
  m.gradientCheckpointing = ckpt;
  return m;
}

const cases: [string, boolean][] = [['gpt2', false], ['gpt2', true], ['opt_post', false], ['neox_parallel', false], ['llama_gqa', false]];
for (const [variant, lora] of cases) {
  t.test(`${variant}${lora ? ' + LoRA' : ''}: loss and every gradient equal with gradientCheckpointing on and off`, (t) => {
    const plainModel = model(variant, false, lora);
    const ckModel = model(variant, true, lora);
    t.teardown(() => {
      plainModel.dispose();
      ckModel.dispose();
    });
    const plain = trainStep(plainModel);
    const inUse = allocator.stats().bytesInUse;
    const ck = trainStep(ckModel);
    zeroGrad(ckModel.parameters());
    t.equal(allocator.stats().bytesInUse, inUse, 'the recompute frees everything it made');
    t.ok(Math.abs(ck.loss - plain.loss) <= 1e-6 * Math.abs(plain.loss), `loss ${ck.loss} vs ${plain.loss}`);
    t.same([...ck.grads.keys()], [...plain.grads.keys()]);
    let worst = 0;
    let worstName = '';
    for (const [name, g] of plain.grads) {
      const h = ck.grads.get(name)!;
      if (g.length === 0) {
        t.equal(h.length, 0, `${name}: no gradient either way`);
        continue;
      }
      for (let i = 0; i < g.length; i++) {
        const d = Math.abs(h[i] - g[i]) / (1e-3 + Math.abs(g[i]));
        if (d > worst) [worst, worstName] = [d, name];
      }
    }
    t.ok(worst <= 1e-5, `every gradient within 1e-5 relative (worst ${worst.toExponential(2)} at ${worstName || '-'})`);
    t.notSame(plainModel.rng.getState(), new Rng(7).getState(), 'dropout drew from the model generator');
    t.same(ckModel.rng.getState(), plainModel.rng.getState(), 'the recompute left the generator where the plain run leaves it');
    t.end();
  });
}

t.test('only a training forward goes through checkpoint nodes', (t) => {
  const m = model('gpt2', true, false);
  t.teardown(() => m.dispose());
  const h = tidy(() => m.hidden(ids, { mask }));
  t.not(h.node!.inputs[0]!.node!.op, 'checkpoint', 'an eval forward records the blocks as usual');
  const blockOut = tidy(() => m.hidden(ids, { mask, train: true }));
  // The final norm follows the last block; its input is the checkpoint node's output.
  t.equal(blockOut.node!.inputs[0]!.node!.op, 'checkpoint', 'a training forward goes through checkpoint nodes');
  h.dispose();
  blockOut.dispose();
  t.end();
});

t.test('actor.gradientCheckpointing reaches the engine options', (t) => {
  const dir = variantDir('gpt2');
  const training = { lr: 1e-3, dropout: false, lora: { dim: 0 } };
  t.equal(engineOptions('actor', { model: dir, seed: 1, training: { ...training, gradientCheckpointing: true } }).gradientCheckpointing, true);
  t.equal(engineOptions('actor', { model: dir, seed: 1, training: { ...training, gradientCheckpointing: false } }).gradientCheckpointing, undefined, 'absent when off');
  t.throws(() => engineOptions('critic', { model: dir, seed: 1, training: { ...training, gradientCheckpointing: 'yes' } }), /critic: args.training.gradientCheckpointing must be true or false/);
  t.end();
});
