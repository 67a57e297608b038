// Gradient averaging across a group's replicas (src/runtime/collective.ts):
// three worker threads average random buffers to the float64 mean with the
// very same bits each; a replica that never arrives fails the reduction
// naming it; and two actor processes doing SFT steps on different shards end
// byte-identical and equal to one engine trained on the whole batch.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadModel } from '../../src/models/checkpoint.js';
import { initModelFolder } from '../../src/models/init.js';
import { type CollectiveSpec, openCollective, parseCollectiveSpec, Relay, withCollectives } from '../../src/runtime/collective.js';
import { createServer } from 'node:net';
import { Runtime } from '../../src/runtime/runtime.js';
import { allowClients, forgetClients, generateRunKeys, readNodeKeys } from '../../src/runtime/curve.js';
import { runNode } from '../../src/runtime/remote-agent.js';
import { planPlacement } from '../../src/runtime/placement.js';
import { Rng } from '../../src/tensor/index.js';
import { engineOptions } from '../../actors/startup.js';
import { PolicyEngine } from '../../src/training/policy.js';
import { distPath } from '../../src/util/paths.js';
import { processesMentioning, tempRunDir } from './helpers.js';

// Runs in each worker: one replica doing two reductions of its buffers.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.url).then(async ({ openCollective }) => {
  const c = await openCollective(workerData.spec, workerData.rank);
  try {
    const out = [];
    for (const round of workerData.rounds) {
      await c.allReduceMean(round);
      out.push(round);
    }
    parentPort.postMessage({ out });
    // Stay up until the test says every replica has its result: zeromq may still be sending
    // this replica's frames, and a worker's buffers are freed the moment it exits (replicas in
    // a run are long-lived processes, so this only matters to a test made of threads).
    await new Promise((resolve) => parentPort.once('message', resolve));
  } finally {
    c.close();
  }
}).catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

function runReplica(spec: CollectiveSpec, rank: number, rounds: Float32Array[][]): { worker: Worker; result: Promise<Float32Array[][]>; exited: Promise<void> } {
  const worker = new Worker(workerSource, { eval: true, workerData: { url: pathToFileURL(distPath('src/runtime/collective.js')).href, spec, rank, rounds } });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const result = new Promise<Float32Array[][]>((resolve, reject) => {
    worker.once('message', (m: { out?: Float32Array[][]; error?: string }) => (m.error ? reject(new Error(`replica ${rank}: ${m.error}`)) : resolve(m.out!)));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`replica ${rank} exited with code ${code} before answering`)));
  });
  return { worker, result, exited };
}

/** Lets replica workers close their collectives and exit (terminating any that do not within 5 s). */
async function closeReplicas(replicas: { worker: Worker; exited: Promise<void> }[]): Promise<void> {
  await Promise.all(replicas.map(async ({ worker, exited }) => {
    worker.postMessage('close');
    const timer = setTimeout(() => void worker.terminate(), 5000);
    await exited;
    clearTimeout(timer);
  }));
}

const SIZES = [1, 7, 1000, 65_537];

// Three replicas take the chunked general path, two the one-pass path for a pair.
for (const N of [3, 2]) t.test(`${N} worker threads average random buffers to the float64 mean, bit-identical on every replica`, async (t) => {
  const dir = tempRunDir(t, 'qcol-');
  const ROUNDS = 2;
  const spec: CollectiveSpec = { group: 'actor', size: N, endpoint: `ipc://${join(dir, 'g0.sock')}`, timeoutMs: 30_000 };
  const rng = new Rng(11);
  // Values spread over several magnitudes, as gradients are.
  const inputs = [...Array(N)].map(() => [...Array(ROUNDS)].map(() => SIZES.map((n) => Float32Array.from({ length: n }, () => (rng.uniform() - 0.5) * 10 ** Math.floor(rng.uniform() * 6 - 3)))));
  const replicas = inputs.map((rounds, r) => runReplica(spec, r, rounds));
  t.teardown(() => closeReplicas(replicas));
  const outs = await Promise.all(replicas.map((x) => x.result));
  let worst = 0;
  for (let k = 0; k < ROUNDS; k++) {
    for (let j = 0; j < SIZES.length; j++) {
      for (let i = 0; i < SIZES[j]; i++) {
        let mean = 0;
        for (let r = 0; r < N; r++) mean += inputs[r][k][j][i];
        mean /= N;
        if (outs[0][k][j][i] !== Math.fround(mean)) worst++;
      }
      for (let r = 1; r < N; r++)
        t.ok(Buffer.from(outs[r][k][j].buffer).equals(Buffer.from(outs[0][k][j].buffer)), `round ${k}, buffer ${j} (${SIZES[j]} elements): replica ${r} has replica 0's bits`);
    }
  }
  t.equal(worst, 0, 'every element is the float64 sum in replica order, divided and rounded to float32 once');
});

t.test('a replica that never arrives fails the reduction on the others, naming it', async (t) => {
  const dir = tempRunDir(t, 'qcol-');
  const spec: CollectiveSpec = { group: 'critic', size: 3, endpoint: `ipc://${join(dir, 'g1.sock')}`, timeoutMs: 400 };
  const root = await openCollective(spec, 0);
  const one = await openCollective(spec, 1);
  t.teardown(() => {
    root.close();
    one.close();
  });
  const [r0, r1] = await Promise.allSettled([root.allReduceMean([new Float32Array(4)]), one.allReduceMean([new Float32Array(4)])]);
  t.match(r0, { status: 'rejected', reason: { message: /collective 'critic' \(reduction 1\): replica 2 did not arrive within 400 ms/ } }, 'replica 0 names the missing replica');
  t.match(r1, { status: 'rejected', reason: { message: /collective 'critic' \(reduction 1\): replica 2 did not arrive/ } }, 'replica 1 hears why at once');

  // The next reduction is not confused by the failed one: mismatched buffers are named.
  const [m0, m1] = await Promise.allSettled([root.allReduceMean([new Float32Array(4)]), one.allReduceMean([new Float32Array(5)])]);
  t.match(m0, { status: 'rejected', reason: { message: /reduction 2\): replica 1 sent 1 buffers of \[5\] elements, the group has 1 of \[4\]/ } });
  t.match(m1, { status: 'rejected', reason: { message: /replica 1 sent 1 buffers of \[5\]/ } });
});

t.test('the relay of a group across machines: every replica sends over tcp + CURVE and gets the mean; a missing one fails the reduction, naming it', async (t) => {
  const keys = generateRunKeys();
  const domain = `qcol-relay-${process.pid}`;
  const notes: string[] = [];
  await allowClients(domain, [keys.node.publicKey], () => {});
  t.teardown(() => forgetClients(domain));
  const relay = await Relay.open({ group: 'actor', size: 2, timeoutMs: 400, host: '127.0.0.1', port: '*', secretKey: keys.server.secretKey, zapDomain: domain, note: (line) => notes.push(line) });
  const spec: CollectiveSpec = {
    group: 'actor', size: 2, endpoint: `tcp://127.0.0.1:${relay.port}`, timeoutMs: 400,
    curve: { serverKey: keys.server.publicKey, publicKey: keys.node.publicKey, secretKey: keys.node.secretKey },
  };
  const r0 = await openCollective(spec, 0), r1 = await openCollective(spec, 1);
  t.teardown(() => {
    r0.close();
    r1.close();
  });
  for (let k = 0; k < 2; k++) {
    const a = Float32Array.from([1, 2, 3]), b = Float32Array.from([3, 6, 10]);
    await Promise.all([r0.allReduceMean([a]), r1.allReduceMean([b])]);
    t.same([...a, ...b], [2, 4, 6.5, 2, 4, 6.5], `reduction ${k + 1}: replica 0 (a member too) and replica 1 get the mean`);
  }
  await t.rejects(r0.allReduceMean([new Float32Array(3)]), { message: /collective 'actor' \(reduction 3\): replica 1 did not arrive within 400 ms/ }, 'replica 0 hears which replica is missing');
  t.match(notes.join('\n'), /replica 1 did not arrive/, 'the relay logs it');
  await relay.close();
  const s = createServer();
  await new Promise<void>((res, rej) => s.once('error', rej).listen(relay.port, '127.0.0.1', () => res()));
  s.close();
  t.pass(`the relay's port ${relay.port} is free after close`);
});

t.test('a restarted replica fails the next reduction: its weights are no longer the group\'s', async (t) => {
  const dir = tempRunDir(t, 'qcol-');
  const spec: CollectiveSpec = { group: 'actor', size: 2, endpoint: `ipc://${join(dir, 'g0.sock')}`, timeoutMs: 5000 };
  const root = await openCollective(spec, 0);
  let one = await openCollective(spec, 1);
  t.teardown(() => {
    root.close();
    one.close();
  });
  for (let k = 0; k < 2; k++) {
    const a = Float32Array.from([1, 2]), b = Float32Array.from([3, 6]);
    await Promise.all([root.allReduceMean([a]), one.allReduceMean([b])]);
    t.same([...a, ...b], [2, 4, 2, 4], `reduction ${k + 1}: the mean on both`);
  }
  one.close();
  one = await openCollective(spec, 1);
  const [r0, r1] = await Promise.allSettled([root.allReduceMean([new Float32Array(2)]), one.allReduceMean([new Float32Array(2)])]);
  t.match(r0, { status: 'rejected', reason: { message: /collective 'actor' \(reduction 3\): replica 1 is at reduction 1: replica 1 was restarted/ } });
  t.match(r1, { status: 'rejected', reason: { message: /replica 1 was restarted, and the replicas' weights no longer agree/ } });
});

t.test('the runtime gives each group of several replicas its own short ipc path, a group across machines the relay; lone replicas none', async (t) => {
  const placement = planPlacement({
    actor: { replicas: 2, devices: ['cpu'], module: 'actors/actor.js', args: { model: 'm' } },
    reference: { replicas: 1, devices: ['cpu'], module: 'actors/reference.js' },
    critic: { replicas: 2, devices: ['cpu'], module: 'actors/critic.js', node: ['local', 'gpu-1'] },
  }, [0, 1]);
  const sockDir = '/tmp/' + 'x'.repeat(80);
  t.throws(() => withCollectives(placement, sockDir), /collective 'critic': its replicas span machines, and no relay address was given/);
  const curve = { serverKey: 'a'.repeat(40), publicKey: 'b'.repeat(40), secretKey: 'c'.repeat(40) };
  const p = withCollectives(placement, sockDir, 5000, (role, plan) => ({ endpoint: `tcp://${plan.node === 'local' ? '127.0.0.1' : '10.0.0.1'}:7000`, curve }));
  const actor = p.roles.actor.map((r) => r.args.collective as CollectiveSpec);
  t.same(actor[0], actor[1], 'both actor replicas get the same spec');
  t.match(actor[0], { group: 'actor', size: 2, endpoint: `ipc://${sockDir}/g0.sock`, timeoutMs: 5000 });
  t.ok(actor[0].endpoint.length - 'ipc://'.length < 107, 'the path fits a unix socket');
  t.equal(p.roles.actor[0].args.model, 'm', 'the other args are kept');
  t.equal(placement.roles.actor[0].args.collective, undefined, 'the input placement is left alone');
  t.equal(p.roles.reference[0].args.collective, undefined, 'a lone replica has no collective');
  const critic = p.roles.critic.map((r) => r.args.collective as CollectiveSpec);
  t.same(critic.map((c) => c.endpoint), ['tcp://127.0.0.1:7000', 'tcp://10.0.0.1:7000'], 'each replica reaches the relay its own way');
  t.same(parseCollectiveSpec('critic', critic[1]), critic[1], 'the spec round trips through the check');
  t.throws(() => parseCollectiveSpec('actor', { group: 'actor', size: 2, endpoint: 'tcp://x:1', timeoutMs: 5 }), /actor: args.collective.curve must be the CURVE keys/);
  t.throws(() => parseCollectiveSpec('actor', { group: 'actor', size: 2, endpoint: 'udp://x:1', timeoutMs: 5 }), /args.collective.endpoint must be an ipc:\/\/ or tcp:\/\/ endpoint/);
  t.equal(parseCollectiveSpec('actor', undefined), null);
  const lone = await openCollective({ group: 'actor', size: 1, endpoint: 'ipc:///nowhere', timeoutMs: 1 }, 0);
  const b = Float32Array.from([1, 2]);
  await lone.allReduceMean([b]);
  t.same([...b], [1, 2], 'a group of one leaves its gradients as they are');
});

for (const across of [false, true]) t.test(`two actor processes stepping on different shards stay byte-identical and equal one engine on the whole batch${across ? ' (across two machines: through the relay)' : ''}`, async (t) => {
  const runDir = tempRunDir(t, 'qcol-rt-');
  const modelDir = join(runDir, 'model');
  initModelFolder(modelDir, { modelType: 'gpt2', layers: 2, hidden: 32, heads: 4, vocab: 300, maxPositions: 64, seed: 5 });
  const args = { model: modelDir, seed: 3 };
  // The second machine is a node agent in this process joining over loopback tcp + CURVE (node.test.ts runs one in a network namespace).
  const rt = await Runtime.open({ runDir, ...(across && { listen: 'tcp://127.0.0.1:*' }) });
  t.teardown(() => rt.shutdown());
  const node = across ? runNode({ coordinator: rt.tcpEndpoint!, keys: readNodeKeys(rt.nodeKeysFile!), name: 'other', log: () => {} }) : null;
  await rt.start({ actor: { replicas: 2, devices: ['cpu:0', 'cpu:1'], module: 'actors/actor.js', args, ...(across && { node: ['local', 'other'] }) } });
  const whole = PolicyEngine.load(engineOptions('actor', args));

  // Four rows a step, two per replica; rows 0 and 2 are left-padded alike so
  // that both shards hold as many target tokens (the mean of the two shard
  // means is then the whole batch's mean).
  const B = 4, T = 12, rng = new Rng(21);
  // gradClip small enough to clip: the norm must be taken after the averaging.
  const step = { lr: 1e-3, weightDecay: 0.1, gradClip: 0.5, microBatch: 1 };
  for (let k = 0; k < 3; k++) {
    const ids = Int32Array.from({ length: B * T }, () => Math.floor(rng.uniform() * 299));
    const mask = Int32Array.from({ length: B * T }, (_, i) => (i % (2 * T) < 3 ? 0 : 1));
    const lossMask = Float32Array.from(mask);
    const tensors = { ids: { dtype: 'i32' as const, shape: [B, T], data: ids }, mask: { dtype: 'i32' as const, shape: [B, T], data: mask }, loss_mask: { dtype: 'f32' as const, shape: [B, T], data: lossMask } };
    const res = await rt.group('actor').call('train_sft', { meta: step, tensors });
    const want = await whole.trainSft({ ids, mask, B, T }, lossMask, step);
    const [g0, g1] = res.replies.map((r) => r.metrics.grad_norm);
    t.equal(g0, g1, `step ${k}: both replicas clip the same averaged gradient (norm ${g0.toFixed(4)})`);
    t.ok(Math.abs(g0 - want.gradNorm) <= 1e-5 * Math.max(1, want.gradNorm), `step ${k}: its norm equals the whole batch's ${want.gradNorm.toFixed(4)}`);
    t.ok(want.gradNorm > step.gradClip, `step ${k}: the step was clipped`);
  }

  await Promise.all([0, 1].map((i) => rt.role('actor', i).call('save', { meta: { dir: join(runDir, `replica-${i}`), optimizer: false } })));
  const bytes = (i: number) => readFileSync(join(runDir, `replica-${i}`, 'model.safetensors'));
  t.ok(bytes(0).equals(bytes(1)), 'the two replicas saved byte-identical weights');
  const saved = loadModel(join(runDir, 'replica-0'));
  let worst = 0;
  for (const [name, p] of whole.model.params) {
    const q = saved.p(name).f32;
    for (let i = 0; i < q.length; i++) worst = Math.max(worst, Math.abs(q[i] - p.f32[i]));
  }
  t.ok(worst < 1e-5, `max difference from one engine trained on the whole batch: ${worst.toExponential(2)} (tolerance 1e-5)`);
  const start = loadModel(modelDir).p('h.0.qkv.w').f32;
  t.ok(saved.p('h.0.qkv.w').f32.some((v, i) => v !== start[i]), 'the replicas did train');

  await rt.shutdown();
  await node;
  t.same(processesMentioning(runDir), [], 'no role outlives the run');
  if (across) t.same(processesMentioning(rt.tcpEndpoint!), [], 'no role of the other machine either');
});
