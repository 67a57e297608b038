// Memory stays flat over a 100-step training loop (forward, backward, clip,
// AdamW step) of a small transformer block with a tied LM head. The loop runs
// in a child process started with --expose-gc (this same file, switched by an
// environment variable) so that resident memory can be measured after a GC.
// Asserted: the allocator's bytes in use are identical at the end of every
// step after warmup, and RSS grows by less than 16 MiB from step 20 to 100.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as T from '../../src/tensor/index.js';

const CHILD_ENV = 'QUARTET_TENSOR_MEMLOOP';
const STEPS = 100;
const WARMUP = 20;

interface Report {
  inUse: number[];
  rssWarm: number;
  rssEnd: number;
  losses: number[];
}

function loop(): Report {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('memory loop: run with --expose-gc');
  const [B, Tn, C, NH, V] = [4, 16, 32, 4, 64];
  const HS = C / NH;
  const rng = new T.Rng(11);
  const w = (shape: number[], std = 0.1) => T.param(T.randn(shape, rng, { std }));
  const ones = (n: number) => T.param(T.ones([n]));
  const zeros = (n: number) => T.param(T.zeros([n]));
  const p = {
    wte: w([V, C]), ln1w: ones(C), ln1b: zeros(C), wqkv: w([3 * C, C]), bqkv: zeros(3 * C), wo: w([C, C]), bo: zeros(C),
    ln2w: ones(C), ln2b: zeros(C), w1: w([4 * C, C]), b1: zeros(4 * C), w2: w([C, 4 * C]), b2: zeros(C), lnfw: ones(C), lnfb: zeros(C),
  };
  const decay = [p.wte, p.wqkv, p.wo, p.w1, p.w2];
  const noDecay = Object.values(p).filter((x) => !decay.includes(x));
  const opt = new T.AdamW([{ params: decay, weightDecay: 0.1 }, { params: noDecay, weightDecay: 0 }], { lr: 3e-3 });
  const sched = new T.LRScheduler(opt, { schedule: 'cosine', warmup: 5, total: STEPS });
  const tokens = Array.from({ length: B * (Tn + 1) }, () => rng.int(V));
  const ids = T.fromI32(tokens.filter((_, i) => i % (Tn + 1) !== Tn), [B, Tn]);
  const labels = T.fromI32(tokens.filter((_, i) => i % (Tn + 1) !== 0), [B * Tn]);
  const heads = (x: T.Tensor) => T.permute(T.reshape(x, [B, Tn, NH, HS]), [0, 2, 1, 3]);

  const report: Report = { inUse: [], rssWarm: 0, rssEnd: 0, losses: [] };
  for (let step = 1; step <= STEPS; step++) {
    const loss = T.tidy(() => {
      const x = T.embedding(ids, p.wte);
      const [q, k, v] = T.split(T.linear(T.layerNorm(x, p.ln1w, p.ln1b, 1e-5), p.wqkv, p.bqkv), [C, C, C], -1).map(heads);
      const att = T.reshape(T.permute(T.attention(q, k, v, { causal: true }), [0, 2, 1, 3]), [B, Tn, C]);
      const h = T.add(x, T.linear(att, p.wo, p.bo));
      const m = T.linear(T.gelu(T.linear(T.layerNorm(h, p.ln2w, p.ln2b, 1e-5), p.w1, p.b1), true), p.w2, p.b2);
      const out = T.layerNorm(T.add(h, m), p.lnfw, p.lnfb, 1e-5);
      const l = T.crossEntropy(T.reshape(T.linear(out, p.wte), [B * Tn, V]), labels);
      l.backward();
      return l.item();
    });
    T.clipGradNorm(opt.params(), 1.0);
    opt.step();
    sched.step();
    opt.zeroGrad();
    report.losses.push(loss);
    report.inUse.push(T.allocator.stats().bytesInUse);
    if (step === WARMUP || step === STEPS) {
      gc();
      gc();
      const rss = process.memoryUsage().rss;
      if (step === WARMUP) report.rssWarm = rss;
      else report.rssEnd = rss;
    }
  }
  return report;
}

if (process.env[CHILD_ENV] === '1') {
  process.stdout.write('MEMLOOP ' + JSON.stringify(loop()) + '\n');
} else {
  const { default: t } = await import('tap');
  t.test('a 100-step training loop keeps memory flat', async (tt) => {
    const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD_ENV]: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    tt.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    const code = await new Promise<number | null>((res) => child.on('close', res));
    tt.equal(code, 0, `child exited cleanly ${err}`);
    const line = out.split('\n').find((l) => l.startsWith('MEMLOOP '));
    if (line === undefined) return tt.fail(`no report from the child: ${out} ${err}`);
    const r = JSON.parse(line.slice(8)) as Report;
    const flat = r.inUse.slice(WARMUP - 1);
    tt.ok(flat.every((b) => b === flat[0]), `allocator bytes in use flat after warmup: ${[...new Set(flat)].join(', ')}`);
    const growth = (r.rssEnd - r.rssWarm) / 2 ** 20;
    tt.ok(growth < 16, `RSS from step ${WARMUP} to ${STEPS}: ${(r.rssWarm / 2 ** 20).toFixed(1)} -> ${(r.rssEnd / 2 ** 20).toFixed(1)} MiB (+${growth.toFixed(1)})`);
    tt.ok(r.losses[STEPS - 1] < r.losses[0] - 1, `the loop trains: loss ${r.losses[0].toFixed(3)} -> ${r.losses[STEPS - 1].toFixed(3)}`);
  });
}
