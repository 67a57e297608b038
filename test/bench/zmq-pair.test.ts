// The runtime bench's baseline (a bare zeromq.js pair) measures real
// transfers and leaves no process or socket behind.
import { readdirSync } from 'node:fs';
import t from 'tap';
import { barePair } from '../../bench/zmq-pair.js';
import { allowedCpus } from '../../src/runtime/placement.js';
import { processesMentioning, tempRunDir } from '../runtime/helpers.js';

for (const transport of ['ipc', 'tcp', 'tcp+curve'] as const) t.test(`bare pair over ${transport}: pings and one-way transfers, then the peer exits`, async (t) => {
  const runDir = tempRunDir(t);
  const f = await barePair(runDir, allowedCpus().at(-1)!, { transport, pings: 20, warmup: 5, sizesMb: [1, 2], reps: () => 3 });
  t.equal(f.pingUs.length, 20);
  t.ok(f.pingUs.every((us) => us > 0), 'every ping took time');
  t.same([...f.oneWayS.keys()], [1, 2]);
  t.ok([...f.oneWayS.values()].every((s) => s > 0 && s < 10), 'one-way seconds per message');
  t.same(processesMentioning('zmq-peer.js'), [], 'the peer process has exited');
  t.same(readdirSync(runDir).filter((n) => n.endsWith('.sock')), [], 'no socket file left');
});
