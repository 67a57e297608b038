// AdamW, gradient clipping and LR schedules against torch.optim.AdamW,
// clip_grad_norm_ and transformers' schedulers (fixture adamw: 20 steps, two
// parameter groups with different lr and weight decay, clipping at 1.0,
// warmup 3 + cosine). Parameters must agree within 1e-5 relative (+1e-7
// absolute for values near 0) after every step.
import t from 'tap';
import * as T from '../../src/tensor/index.js';
import { compare, get, loadFixture } from './fixtures/reader.js';

const f = loadFixture('adamw');
const STEPS = 20;
const RTOL = 1e-5;
const ATOL = 1e-7;

function makeParams(): T.Tensor[] {
  return [0, 1, 2].map((j) => T.param(T.tensor(get(f, `p${j}`).f32, get(f, `p${j}`).shape)));
}

function makeOpt(ps: T.Tensor[]): T.AdamW {
  return new T.AdamW([{ params: [ps[0], ps[2]], weightDecay: 0.1 }, { params: [ps[1]], weightDecay: 0, lr: 2e-2 }],
    { lr: 1e-2, betas: [0.9, 0.95], eps: 1e-8 });
}

function setGrads(ps: T.Tensor[], step: number): void {
  ps.forEach((p, j) => {
    const all = get(f, `grads_p${j}`).f32;
    p.grad?.dispose();
    p.grad = T.tensor(all.subarray(step * p.size, (step + 1) * p.size), p.shape);
  });
}

function runSteps(tt: { ok(c: boolean, m: string): void }, ps: T.Tensor[], opt: T.AdamW, sched: T.LRScheduler, from: number, to: number): void {
  const norms = get(f, 'norms').f32;
  const lrs = get(f, 'lrs').f32;
  for (let s = from; s < to; s++) {
    setGrads(ps, s);
    const lr = sched.lastLr;
    tt.ok(Math.abs(lr[0] - lrs[2 * s]) <= 1e-9 && Math.abs(lr[1] - lrs[2 * s + 1]) <= 1e-9, `step ${s}: lr ${lr} vs torch ${lrs[2 * s]}, ${lrs[2 * s + 1]}`);
    const norm = T.clipGradNorm(ps, 1.0);
    tt.ok(Math.abs(norm - norms[s]) <= 1e-5 * norms[s], `step ${s}: grad norm ${norm} vs torch ${norms[s]}`);
    opt.step();
    sched.step();
    ps.forEach((p, j) => {
      const r = compare(p.f32, get(f, `after${s}_p${j}`).f32, ATOL, RTOL);
      tt.ok(r.ok, `step ${s}: p${j} ${r.msg}`);
    });
  }
}

t.test('20 AdamW steps with clipping and warmup+cosine match torch', async (tt) => {
  const ps = makeParams();
  const opt = makeOpt(ps);
  runSteps(tt, ps, opt, new T.LRScheduler(opt, { schedule: 'cosine', warmup: 3, total: STEPS }), 0, STEPS);
});

t.test('stateDict / loadStateDict resume mid-run exactly', async (tt) => {
  const ps = makeParams();
  const opt = makeOpt(ps);
  const sched = new T.LRScheduler(opt, { schedule: 'cosine', warmup: 3, total: STEPS });
  runSteps(tt, ps, opt, sched, 0, 10);
  const sd = opt.stateDict();
  const ssd = sched.stateDict();
  opt.step(); // moving the old optimizer on must not touch the saved copy
  // A fresh process: new parameters holding the saved values, a new optimizer and schedule.
  const ps2 = ps.map((p) => T.param(T.tensor(get(f, 'after9_p' + ps.indexOf(p)).f32, p.shape)));
  const opt2 = makeOpt(ps2);
  opt2.loadStateDict(sd);
  const sched2 = new T.LRScheduler(opt2, { schedule: 'cosine', warmup: 3, total: STEPS });
  sched2.loadStateDict(ssd);
  runSteps(tt, ps2, opt2, sched2, 10, STEPS);
  tt.throws(() => makeOpt(makeParams()).loadStateDict({ ...sd, groups: sd.groups.slice(0, 1) }), /AdamW.loadStateDict: 1 groups saved, optimizer has 2/);
  const bad = { ...sd, state: sd.state.map((s) => (s === null ? s : { ...s, m: new Float32Array(3) })) };
  tt.throws(() => makeOpt(makeParams()).loadStateDict(bad), /AdamW.loadStateDict: state 0 does not fit parameter \[7, 5\]/);
});

t.test('schedules match transformers (linear, cosine) and warm up (constant)', async (tt) => {
  for (const name of ['linear', 'cosine'] as const) {
    const want = get(f, `factors_${name}`).f32;
    for (let s = 0; s < want.length; s++) {
      const got = T.lrFactor(s, { schedule: name, warmup: 3, total: 20 });
      tt.ok(Math.abs(got - want[s]) < 1e-7, `${name} step ${s}: ${got} vs ${want[s]}`);
    }
  }
  tt.same([0, 1, 2, 3, 50].map((s) => T.lrFactor(s, { schedule: 'constant', warmup: 2, total: 10 })), [0, 0.5, 1, 1, 1]);
  tt.equal(T.lrAt(0, { schedule: 'constant', warmup: 0, total: 0, lr: 3e-4 }), 3e-4);
  tt.throws(() => T.lrFactor(0, { schedule: 'step' as T.ScheduleName, warmup: 0, total: 1 }), /schedule: unknown schedule "step"/);
  tt.throws(() => T.lrFactor(0, { schedule: 'linear', warmup: 5, total: 3 }), /schedule: total must be an integer >= warmup \(5\), got 3/);
});

t.test('AdamW and clipping check their input', async (tt) => {
  const p = T.param(T.ones([3]));
  tt.throws(() => new T.AdamW([p], { lr: -1 }), /AdamW: lr is invalid: -1/);
  tt.throws(() => new T.AdamW([{ params: [p], betas: [0.9, 1] }]), /AdamW: group 0 betas is invalid/);
  tt.throws(() => new T.AdamW([T.ones([2])]), /AdamW: group 0 holds a tensor \[2\] that is not a parameter/);
  tt.throws(() => new T.AdamW([{ params: [p] }, { params: [p] }]), /more than one group/);
  tt.throws(() => T.clipGradNorm([p], 0), /clipGradNorm: maxNorm must be > 0/);
  const opt = new T.AdamW([p]);
  opt.step();
  tt.same(p.toArray(), [1, 1, 1], 'a parameter without a gradient is skipped');
  tt.same(opt.stateDict().state, [null]);
  p.grad = T.tensor([3, 4, 0]);
  tt.equal(T.clipGradNorm([p], 10), 5, 'no clipping below maxNorm');
  tt.same(p.grad.toArray(), [3, 4, 0]);
  opt.zeroGrad();
  tt.equal(p.grad, null);
  const q = T.param(T.ones([2, 2]));
  q.grad = T.tensor([1, NaN, 0, 0], [2, 2]);
  tt.ok(Number.isNaN(T.clipGradNorm([p, q], 1)), 'a NaN norm is returned by default');
  tt.throws(() => T.clipGradNorm([p, q], 1, { errorIfNonfinite: true }), /clipGradNorm: the total gradient norm is NaN; non-finite gradients in parameters \[2, 2\]/);
});
