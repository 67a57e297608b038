// In-process roles that follow docs/roles.md in shapes and record every call,
// for driving the coordinator without models. Their numbers are simple
// functions of their inputs, so tests can predict them. Every call's meta is
// checked as the real roles check it (src/roles/methods.ts), so a driver that
// leaves out a per-call setting fails here too.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMeta, roleMethods, type RoleName } from '../../src/roles/methods.js';
import { inProcessRoles, wireTensor, type Request, type RoleSetup, type Roles, type WireTensor } from '../../src/runtime/index.js';

export const EOS = 2;
export const PAD = 0;
/** Answer tokens the fake actor writes: 10, 11, 12, ... */
export const ANSWER_BASE = 10;

export interface Call {
  role: string;
  replica: number;
  method: string;
  meta: Record<string, unknown>;
  shapes: Record<string, number[]>;
  tensors: Record<string, WireTensor>;
}

export interface FakeOptions {
  replicas?: Partial<Record<'actor' | 'critic' | 'reference' | 'reward', number>>;
  /** Answer length (before eos) that the actor writes for a prompt, by its last token. Default: last % 4. */
  answerLen?: (lastPromptToken: number) => number;
  /** The config.json a `save` writes (default: a marker that names no model family). */
  savedConfig?: object;
}

function shapes(req: Request): Record<string, number[]> {
  return Object.fromEntries(Object.entries(req.tensors).map(([k, t]) => [k, t.shape]));
}

function f32(shape: number[], fill: (i: number) => number): WireTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return wireTensor('f32', shape, Float32Array.from({ length: n }, (_, i) => fill(i)));
}

export function fakeRoles(opts: FakeOptions = {}): { roles: Roles; calls: Call[] } {
  const calls: Call[] = [];
  const answerLen = opts.answerLen ?? ((last: number) => last % 4);
  let sftLoss = 3;
  const setup = (role: string, replica: number, methods: Record<string, (req: Request) => unknown>): RoleSetup => ({
    methods: Object.fromEntries(Object.entries(methods).map(([name, fn]) => [name, async (req: Request) => {
      if (name in roleMethods[role as RoleName]) readMeta(role as RoleName, name as never, req.meta);
      calls.push({ role, replica, method: name, meta: req.meta as Record<string, unknown>, shapes: shapes(req), tensors: req.tensors });
      return fn(req) as never;
    }])),
  });
  const save = (req: Request) => {
    const dir = req.meta.dir as string;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.savedConfig ?? { saved: true, optimizer: req.meta.optimizer }));
  };
  const lp = (offset: number) => (req: Request) => {
    const [B, T] = req.tensors.ids.shape;
    return { tensors: { logprobs: f32([B, T - 1], (i) => -1 - offset - 0.01 * (i % (T - 1))) } };
  };
  const actor = (replica: number) => setup('actor', replica, {
    generate(req: Request) {
      const [B, P] = req.tensors.prompt_ids.shape;
      const N = req.meta.maxNewTokens as number;
      const pids = req.tensors.prompt_ids.data as Int32Array;
      const ids = new Int32Array(B * (P + N)).fill(PAD);
      for (let b = 0; b < B; b++) {
        ids.set(pids.subarray(b * P, (b + 1) * P), b * (P + N));
        const n = Math.min(N, answerLen(pids[(b + 1) * P - 1]));
        for (let j = 0; j < n; j++) ids[b * (P + N) + P + j] = ANSWER_BASE + j;
        if (n < N) ids[b * (P + N) + P + n] = EOS;
      }
      return { tensors: { ids: wireTensor('i32', [B, P + N], ids) } };
    },
    logprobs: lp(0),
    train_sft(req: Request) {
      sftLoss *= 0.9;
      const m = req.tensors.loss_mask.data as Float32Array;
      return { metrics: { loss: sftLoss, grad_norm: 1, tokens: m.reduce((a, b) => a + b, 0) } };
    },
    eval_sft(req: Request) {
      const m = req.tensors.loss_mask.data as Float32Array;
      return { metrics: { loss: sftLoss, tokens: m.reduce((a, b) => a + b, 0) } };
    },
    train_ppo: () => ({ metrics: { policy_loss: -0.1, clip_frac: 0.05, approx_kl: 0.01, grad_norm: 0.5 } }),
    save,
    load: () => ({}),
  });
  const critic = (replica: number) => setup('critic', replica, {
    values(req: Request) {
      const [B, T] = req.tensors.ids.shape;
      return { tensors: { values: f32([B, T - 1], () => 0.5) } };
    },
    train_value: () => ({ metrics: { value_loss: 0.2, vf_clip_frac: 0.1, grad_norm: 0.3 } }),
    save,
    load: () => ({}),
  });
  const reference = (replica: number) => setup('reference', replica, { logprobs: lp(0.5) });
  const reward = (replica: number) => setup('reward', replica, {
    score(req: Request) {
      // The score is the number of real tokens after the prompt: a stand-in that depends on the mask.
      const [B, T] = req.tensors.ids.shape;
      const P = req.meta.promptLength as number;
      const mask = req.tensors.mask.data as Int32Array;
      return { tensors: { scores: f32([B], (b) => { let n = 0; for (let t = P; t < T; t++) n += mask[b * T + t]; return n; }) } };
    },
    train_rm(req: Request) {
      const B = req.tensors.chosen_ids.shape[0];
      return { metrics: { loss: 0.6, acc: 0.75, chosen_mean: 1, rejected_mean: -1, grad_norm: 1, pairs: B } };
    },
    eval_rm(req: Request) {
      const B = req.tensors.chosen_ids.shape[0];
      return { tensors: { chosen_scores: f32([B], () => 1), rejected_scores: f32([B], () => 0) }, metrics: { loss: 0.5, acc: 0.8, chosen_mean: 1, rejected_mean: 0 } };
    },
    save,
    load: () => ({}),
  });
  const n = (r: 'actor' | 'critic' | 'reference' | 'reward') => opts.replicas?.[r] ?? 1;
  const roles = inProcessRoles({
    actor: Array.from({ length: n('actor') }, (_, i) => actor(i)),
    critic: Array.from({ length: n('critic') }, (_, i) => critic(i)),
    reference: Array.from({ length: n('reference') }, (_, i) => reference(i)),
    reward: Array.from({ length: n('reward') }, (_, i) => reward(i)),
  });
  return { roles, calls };
}
