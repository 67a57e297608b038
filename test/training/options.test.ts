// Role start-up args -> engine options: every bad key named; LoRA on the
// linears the module names select, overlapping names adapting a linear once.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initModelFolder } from '../../src/models/init.js';
import { buildModel, engineOptions } from '../../src/training/options.js';

const root = mkdtempSync(join(tmpdir(), 'quartet-options-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'llama');
initModelFolder(dir, { modelType: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 300, seed: 1 });

t.test('args as the placement plan writes them', (t) => {
  const o = engineOptions('actor', { model: dir, seed: 5, training: { lr: 1e-3, dropout: true, lora: { dim: 4, alpha: 2, moduleNames: [], onlyOptimizeLora: true, lr: 5e-4 } } });
  t.same(o, { model: dir, seed: 5, dropout: true, baseLr: 1e-3, lora: { dim: 4, alpha: 2, moduleNames: [], onlyOptimizeLora: true, lr: 5e-4 } });
  t.same(engineOptions('reference', { model: dir }), { model: dir, seed: 0, dropout: false, lora: null, baseLr: null });
  t.equal(engineOptions('actor', { model: dir, dropout: true }).dropout, true, 'top-level dropout as docs/roles.md shows it');
  t.end();
});

t.test('bad args name the key', (t) => {
  t.throws(() => engineOptions('critic', {}), /critic: args.model must be the folder/);
  t.throws(() => engineOptions('actor', { model: dir, seed: 'x' }), /actor: args.seed must be a finite number/);
  t.throws(() => engineOptions('actor', { model: dir, training: { dropout: 1 } }), /actor: args.training.dropout must be true or false/);
  t.throws(() => engineOptions('actor', { model: dir, training: { lora: { dim: 2.5 } } }), /args.training.lora.dim must be a non-negative integer/);
  t.throws(() => engineOptions('actor', { model: dir, training: { lora: { dim: 2, moduleNames: 'q_proj' } } }), /args.training.lora.moduleNames must be a list/);
  t.throws(() => engineOptions('actor', { model: dir, training: [] }), /actor: args.training must be an object/);
  t.end();
});

t.test('LoRA: all block linears by default; overlapping names adapt the fused linear once; freezing', (t) => {
  const all = buildModel(engineOptions('actor', { model: dir, training: { lora: { dim: 2 } } }));
  t.same([...all.lora.keys()].sort(), ['h.0.down', 'h.0.o', 'h.0.qkv', 'h.0.up', 'h.1.down', 'h.1.o', 'h.1.qkv', 'h.1.up']);
  const qv = buildModel(engineOptions('actor', { model: dir, training: { lora: { dim: 2, moduleNames: ['q_proj', 'v_proj', 'mlp'], onlyOptimizeLora: true } } }));
  t.same([...qv.lora.keys()].sort(), ['h.0.down', 'h.0.qkv', 'h.0.up', 'h.1.down', 'h.1.qkv', 'h.1.up']);
  t.ok(qv.namedParameters().every(([n]) => n.startsWith('lora.')), 'onlyOptimizeLora leaves only the adapters trainable');
  t.throws(() => buildModel(engineOptions('actor', { model: dir, training: { lora: { dim: 2, moduleNames: ['nothing_here'] } } })), /lora: no linear layer/);
  t.end();
});
