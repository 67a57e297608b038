// Where a request's tensors enter a role (actors/requests.ts): the one check
// of a batch on its way to the kernels names the tensor, the row and what is wrong.
import t from 'tap';
import { dpoBatch, pairs, ppoBatch, takeSeqs } from '../../actors/requests.js';
import type { Request } from '../../src/runtime/role-server.js';
import type { Tensors } from '../../src/runtime/wire.js';

const i32 = (shape: number[], data: number[]) => ({ dtype: 'i32' as const, shape, data: Int32Array.from(data) });
const f32 = (shape: number[], data: number[]) => ({ dtype: 'f32' as const, shape, data: Float32Array.from(data) });
const req = (method: string, tensors: Tensors): Request => ({ method, meta: {}, tensors });

t.test('sequences: dtype, shape, 0/1 mask, a real token in every row', (t) => {
  const ids = i32([2, 3], [1, 2, 3, 4, 5, 6]);
  t.same(takeSeqs('x', { ids, mask: i32([2, 3], [0, 1, 1, 1, 1, 1]) }), { ids: ids.data, mask: Int32Array.from([0, 1, 1, 1, 1, 1]), B: 2, T: 3 });
  t.throws(() => takeSeqs('x', { ids }), /x: tensor 'mask' is missing/);
  t.throws(() => takeSeqs('x', { ids, mask: f32([2, 3], [1, 1, 1, 1, 1, 1]) }), /x: tensor 'mask' must be i32 \[2,3\], got f32 \[2,3\]/);
  t.throws(() => takeSeqs('x', { ids, mask: i32([2, 3], [1, 1, 1, 0, 0, 0]) }), /x: row 1 of 'mask' has no real token/);
  t.throws(() => takeSeqs('x', { ids, mask: i32([2, 3], [1, 2, 1, 1, 1, 1]) }), /x: 'mask'\[0, 1\] is 2/);
  t.throws(() => takeSeqs('x', { ids, mask: i32([2, 3], [1, 1, 1, 1, 1, 1]) }, 'ids', 'mask', 4), /has 3 columns, needs at least 4/);
  t.end();
});

t.test('per-token tensors are [B, T-1]', (t) => {
  const seq = { ids: i32([1, 3], [1, 2, 3]), mask: i32([1, 3], [1, 1, 1]) };
  const ok = ppoBatch('train_ppo', req('train_ppo', { ...seq, old_logprobs: f32([1, 2], [0, 0]), advantages: f32([1, 2], [1, 1]), action_mask: f32([1, 2], [0, 1]) }));
  t.same(Array.from(ok.actionMask), [0, 1]);
  t.throws(() => ppoBatch('train_ppo', req('train_ppo', { ...seq, old_logprobs: f32([1, 3], [0, 0, 0]) })), /train_ppo: tensor 'old_logprobs' must be f32 \[1,2\]/);
  t.end();
});

t.test('pairs share one width; every DPO answer mask row selects a token', (t) => {
  const side = (w: number) => ({ ids: i32([1, w], Array(w).fill(1)), mask: i32([1, w], Array(w).fill(1)) });
  const pair = (cw: number, rw: number): Tensors => ({ chosen_ids: side(cw).ids, chosen_mask: side(cw).mask, rejected_ids: side(rw).ids, rejected_mask: side(rw).mask });
  t.equal(pairs('train_rm', req('train_rm', pair(3, 3)))[0].T, 3);
  t.throws(() => pairs('train_rm', req('train_rm', pair(3, 4))), /train_rm: chosen is \[1, 3\] but rejected is \[1, 4\]; pad both to one width/);
  const dpo = (answer: number[]): Tensors => ({
    ...pair(3, 3), chosen_answer_mask: f32([1, 2], answer), rejected_answer_mask: f32([1, 2], [0, 1]),
    ref_chosen_logps: f32([1], [0]), ref_rejected_logps: f32([1], [0]),
  });
  t.equal(dpoBatch('train_dpo', req('train_dpo', dpo([1, 1]))).chosen.B, 1);
  t.throws(() => dpoBatch('eval_dpo', req('eval_dpo', dpo([0, 0]))), /eval_dpo: chosen_answer_mask row 0 selects no answer token/);
  t.end();
});
