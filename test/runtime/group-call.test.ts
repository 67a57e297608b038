// RoleGroup.call with allReplicas: a training call with fewer rows than
// replicas fails at once, naming the group, method and row count, and calls
// no replica; with enough rows (or without the option) the batch is sharded.
import t from 'tap';
import { inProcessRoles } from '../../src/runtime/handles.js';
import { RuntimeError } from '../../src/runtime/protocol.js';
import type { WireTensor } from '../../src/runtime/wire.js';

const rows = (n: number): { x: WireTensor } => ({ x: { dtype: 'f32', shape: [n, 2], data: new Float32Array(n * 2) } });

t.test('fewer rows than replicas: an immediate error with allReplicas, a partial call without', async (t) => {
  const called: number[] = [];
  const roles = inProcessRoles({
    actor: [0, 1, 2].map((i) => ({
      methods: {
        train_sft: (req: { tensors: Record<string, { shape: number[] }> }) => {
          called.push(i);
          return { metrics: { rows: req.tensors.x.shape[0] } };
        },
      },
    })),
  });
  const group = roles.group('actor');
  const err = await group.call('train_sft', { tensors: rows(2) }, { allReplicas: true }).then(() => null, (e: unknown) => e);
  t.ok(err instanceof RuntimeError, 'a RuntimeError');
  t.equal((err as RuntimeError).code, 'bad_message');
  t.match((err as RuntimeError).message, /group 'actor'\.call\('train_sft'\): 2 row\(s\) for 3 replicas/);
  t.same(called, [], 'no replica was called');

  const ok = await group.call('train_sft', { tensors: rows(3) }, { allReplicas: true });
  t.same(called.sort(), [0, 1, 2], 'three rows reach all three replicas');
  t.equal(ok.replies.length, 3);

  called.length = 0;
  const partial = await group.call('train_sft', { tensors: rows(2) });
  t.same(called.sort(), [0, 1], 'without the option, replicas with no rows are left out');
  t.equal(partial.replies.length, 2);
});
