// Role start-up args (actors/startup.ts) -> engine options: every missing or
// bad key named, no role-side default for a setting the plan sends; LoRA on
// the linears the module names select, overlapping names adapting a linear once.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModelFolder } from '../../src/models/init.js';
import { emaBeta, engineOptions } from '../../actors/startup.js';
import { buildModel } from '../../src/training/options.js';

const root = mkdtempSync(join(tmpdir(), 'quartet-options-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'llama');
initModelFolder(dir, { modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 300, seed: 1 });
// As the placement plan writes them (src/config/plan.ts).
const lora = { dim: 2, alpha: 1, moduleNames: [] as string[], onlyOptimizeLora: false, lr: 5e-4 };
const training = { lr: 1e-3, dropout: false, gradientCheckpointing: false, lora: { dim: 0 } as Record<string, unknown> };

t.test('args as the placement plan writes them', (t) => {
  const o = engineOptions('actor', { model: dir, seed: 5, training: { lr: 1e-3, dropout: true, gradientCheckpointing: false, lora: { dim: 4, alpha: 2, moduleNames: [], onlyOptimizeLora: true, lr: 5e-4 } } });
  t.same(o, { model: dir, seed: 5, dropout: true, baseLr: 1e-3, lora: { dim: 4, alpha: 2, moduleNames: [], onlyOptimizeLora: true, lr: 5e-4 } });
  t.same(engineOptions('reference', { model: dir, seed: 0 }), { model: dir, seed: 0, dropout: false, lora: null, baseLr: null }, 'no training args: the model as its folder has it');
  t.same(engineOptions('actor', { model: dir, seed: 0, training: { ...training, lora: { dim: 0 } } }).lora, null, 'lora.dim 0: the other LoRA keys are not read');
  t.equal(emaBeta({ ema: 0.9 }), 0.9);
  t.equal(emaBeta({}), 0, 'no moving average unless asked for');
  t.end();
});

t.test('bad args name the key', (t) => {
  t.throws(() => engineOptions('critic', {}), /critic: args.model must be the folder/);
  t.throws(() => engineOptions('actor', { model: dir, seed: 'x' }), /actor: args.seed must be a finite number/);
  t.throws(() => engineOptions('actor', { model: dir }), /actor: args.seed must be a finite number, got undefined/, 'no default seed');
  t.throws(() => engineOptions('actor', { model: dir, seed: 1, training: { ...training, dropout: 1 } }), /actor: args.training.dropout must be true or false/);
  t.throws(() => engineOptions('actor', { model: dir, seed: 1, training: { lora: training.lora, dropout: false, gradientCheckpointing: false } }), /actor: args.training.lr must be a finite number, got undefined/);
  t.throws(() => engineOptions('actor', { model: dir, seed: 1, training: { ...training, lora: { dim: 2.5 } } }), /args.training.lora.dim must be a non-negative integer/);
  t.throws(() => engineOptions('actor', { model: dir, seed: 1, training: { ...training, lora: { ...lora, moduleNames: 'q_proj' } } }), /args.training.lora.moduleNames must be a list/);
  t.throws(() => engineOptions('actor', { model: dir, seed: 1, training: { ...training, lora: { dim: 2, moduleNames: [] } } }), /args.training.lora.alpha must be a finite number, got undefined/, 'no default LoRA scaling');
  t.throws(() => engineOptions('actor', { model: dir, seed: 1, training: [] }), /actor: args.training must be an object/);
  t.throws(() => emaBeta({ ema: 2 }), /actor: args.ema must be in \[0, 1\]/);
  t.end();
});

t.test('LoRA: all block linears by default; overlapping names adapt the fused linear once; freezing', (t) => {
  const all = buildModel(engineOptions('actor', { model: dir, seed: 1, training: { ...training, lora } }));
  t.same([...all.lora.keys()].sort(), ['h.0.down', 'h.0.o', 'h.0.qkv', 'h.0.up', 'h.1.down', 'h.1.o', 'h.1.qkv', 'h.1.up']);
  const qv = buildModel(engineOptions('actor', { model: dir, seed: 1, training: { ...training, lora: { ...lora, moduleNames: ['q_proj', 'v_proj', 'mlp'], onlyOptimizeLora: true } } }));
  t.same([...qv.lora.keys()].sort(), ['h.0.down', 'h.0.qkv', 'h.0.up', 'h.1.down', 'h.1.qkv', 'h.1.up']);
  t.ok(qv.namedParameters().every(([n]) => n.startsWith('lora.')), 'onlyOptimizeLora leaves only the adapters trainable');
  t.throws(() => buildModel(engineOptions('actor', { model: dir, seed: 1, training: { ...training, lora: { ...lora, moduleNames: ['nothing_here'] } } })), /lora: no linear layer/);
  t.end();
});
