// The pieces without processes: tensors on the wire, header parsing (which
// must never throw), sharding, placement parsing, spawn commands, start-up
// variables, options, Z85, and the import boundary of src/runtime.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import t from 'tap';
import { NodeAgent, ROLE_MALLOC_TUNABLES, withMallocPolicy } from '../../src/runtime/agent.js';
import { generateRunKeys, runKeysIn, z85Encode } from '../../src/runtime/curve.js';
import { shardRange } from '../../src/runtime/handles.js';
import { resolveOptions } from '../../src/runtime/options.js';
import { parseDevices, planPlacement } from '../../src/runtime/placement.js';
import { decode, encode, PROTOCOL_VERSION } from '../../src/runtime/protocol.js';
import { readStartup, startupEnv, type RoleStartup } from '../../src/runtime/startup.js';
import { concatRows, sliceRows, tensorFromFrame, wireTensor, type Tensors } from '../../src/runtime/wire.js';
import { repoRoot } from '../../src/util/paths.js';

const packr = new Packr({ useRecords: false });

t.test('encode/decode round trip of every dtype, views where aligned', async (t) => {
  const tensors: Tensors = {
    f32: wireTensor('f32', [2, 2], Float32Array.from([1.5, -2, 3e-8, Infinity])),
    f64: wireTensor('f64', [1], Float64Array.from([Math.PI])),
    f16: wireTensor('f16', [2], Uint16Array.from([0x3c00, 0xc000])),
    bf16: wireTensor('bf16', [1], Uint16Array.from([0x3f80])),
    i8: wireTensor('i8', [2], Int8Array.from([-128, 127])),
    u8: wireTensor('u8', [3], Uint8Array.from([0, 1, 255])),
    i16: wireTensor('i16', [1], Int16Array.from([-300])),
    i32: wireTensor('i32', [2, 1], Int32Array.from([-(2 ** 31), 2 ** 31 - 1])),
    i64: wireTensor('i64', [1], BigInt64Array.from([-(2n ** 62n)])),
    bool: wireTensor('bool', [2], Uint8Array.from([0, 1])),
    scalar: wireTensor('f32', [], Float32Array.from([7])),
  };
  const frames = encode({ kind: 'req', id: 9, method: 'm', sender: 's', meta: { a: [1, 'x'], b: { c: true } }, timeout_ms: 50 }, tensors);
  t.equal(frames.length, 1 + Object.keys(tensors).length, 'one frame per tensor');
  t.equal(frames[1].buffer, tensors.f32.data.buffer, 'tensor frames are views, not copies');
  const d = decode(frames);
  if (!d.ok) throw d.error;
  t.match(d.msg, { version: PROTOCOL_VERSION, kind: 'req', id: 9, method: 'm', sender: 's', meta: { a: [1, 'x'], b: { c: true } }, timeout_ms: 50 });
  for (const [n, x] of Object.entries(tensors)) {
    t.equal(d.msg.data[n].dtype, x.dtype);
    t.same(d.msg.data[n].shape, x.shape);
    t.same([...d.msg.data[n].data], [...x.data], `${n} values`);
  }
  t.equal(d.msg.data.f32.data.buffer, tensors.f32.data.buffer, 'received tensors view the frame memory');
});

t.test('a misaligned frame is copied into aligned memory', async (t) => {
  const raw = Buffer.alloc(4 * 3 + 1);
  const frame = raw.subarray(1);
  new DataView(frame.buffer, frame.byteOffset).setFloat32(4, 2.5, true);
  const x = tensorFromFrame('x', 'f32', [3], frame);
  t.same([...x.data], [0, 2.5, 0]);
  t.not(x.data.buffer, raw.buffer, 'copied');
  const aligned = tensorFromFrame('y', 'f32', [3], raw.subarray(0, 12));
  t.equal(aligned.data.buffer, raw.buffer, 'aligned: a view');
  t.throws(() => tensorFromFrame('z', 'f32', [4], raw.subarray(0, 12)), /tensor 'z': f32\[4\] needs 16 bytes, frame has 12/);
});

t.test('decode refuses bad messages with a reason and never throws', async (t) => {
  const hdr = (h: object) => packr.pack({ version: 1, kind: 'req', id: 1, method: 'm', sender: 's', ...h });
  const cases: [string, Buffer[], RegExp][] = [
    ['empty', [], /empty message/],
    ['not msgpack', [Buffer.from([0x81])], /not msgpack: Unexpected end/],
    ['an array', [packr.pack([1, 2])], /not a msgpack map/],
    ['version', [hdr({ version: 2 })], /protocol version 2 is not supported/],
    ['kind', [hdr({ kind: 'yo' })], /unknown kind "yo"/],
    ['id', [hdr({ id: 'x' })], /'id' must be an integer/],
    ['sender', [hdr({ sender: 4 })], /'sender' must be a string/],
    ['method', [hdr({ method: undefined })], /a req needs a 'method'/],
    ['meta', [hdr({ meta: [1] })], /'meta' must be a map/],
    ['timeout', [hdr({ timeout_ms: -1 })], /'timeout_ms' must be a number >= 0/],
    ['err', [hdr({ kind: 'err', error: { code: 1 } })], /an err needs 'error'/],
    ['tensors', [hdr({ tensors: 'x' })], /'tensors' must be a list/],
    ['frames', [hdr({ tensors: [] }), Buffer.alloc(4)], /lists 0 tensors but 1 tensor frames/],
    ['dtype', [hdr({ tensors: [{ name: 'a', dtype: 'f8', shape: [1] }] }), Buffer.alloc(1)], /known dtype/],
    ['shape', [hdr({ tensors: [{ name: 'a', dtype: 'u8', shape: [-1] }] }), Buffer.alloc(1)], /known dtype/],
    ['twice', [hdr({ tensors: [{ name: 'a', dtype: 'u8', shape: [1] }, { name: 'a', dtype: 'u8', shape: [1] }] }), Buffer.alloc(1), Buffer.alloc(1)], /'a' appears twice/],
    ['length', [hdr({ tensors: [{ name: 'a', dtype: 'i32', shape: [2] }] }), Buffer.alloc(7)], /needs 8 bytes, frame has 7/],
  ];
  for (const [name, frames, why] of cases) {
    const d = decode(frames);
    t.equal(d.ok, false, name);
    if (!d.ok) t.match(d.error.message, why, `${name}: ${d.error.message}`);
  }
  // Random bytes: always a refusal, never an exception.
  let seed = 12345;
  const rnd = () => ((seed = Math.imul(seed, 1103515245) + 12345) >>> 16) & 0xff;
  let accepted = 0;
  for (let i = 0; i < 500; i++) {
    const frames = [Buffer.from(Array.from({ length: 1 + (i % 40) }, rnd)), ...(i % 3 ? [Buffer.from([rnd()])] : [])];
    if (decode(frames).ok) accepted++;
  }
  t.equal(accepted, 0, '500 random messages: all refused as values, none thrown');
});

t.test('slicing, gathering and shard ranges', async (t) => {
  const x = wireTensor('i32', [5, 2], Int32Array.from({ length: 10 }, (_, i) => i));
  const a = sliceRows(x, 1, 3);
  t.same(a.shape, [2, 2]);
  t.same([...a.data], [2, 3, 4, 5]);
  t.equal(a.data.buffer, x.data.buffer, 'a slice is a view');
  t.same([...concatRows('x', [sliceRows(x, 0, 1), sliceRows(x, 1, 5)]).data], [...x.data]);
  t.throws(() => concatRows('x', [x, wireTensor('f32', [1, 2], new Float32Array(2))]), /parts differ/);
  t.throws(() => wireTensor('f32', [3], new Float32Array(2)), /holds 3 elements but data has 2/);
  t.throws(() => wireTensor('f32', [2], new Int32Array(2) as unknown as Float32Array), /needs a Float32Array, got Int32Array/);
  for (let total = 0; total <= 20; total++) {
    for (let count = 1; count <= 6; count++) {
      let next = 0;
      const sizes: number[] = [];
      for (let i = 0; i < count; i++) {
        const [s, e] = shardRange(total, count, i);
        if (s !== next) t.fail(`shard ${i} of ${count} over ${total} starts at ${s}, expected ${next}`);
        sizes.push(e - s);
        next = e;
      }
      if (next !== total || Math.max(...sizes) - Math.min(...sizes) > 1 || sizes.some((s, i) => i && s > sizes[i - 1]))
        t.fail(`shards of ${total} over ${count}: ${sizes}`);
    }
  }
  t.pass('shards are contiguous, cover every row, and differ by at most one row (larger first)');
});

t.test('placement', async (t) => {
  const p = planPlacement({
    actor: { replicas: 2, devices: ['cpu:0', 'cpu:1'], module: 'actors/actor.js', args: { lr: 1 } },
    critic: { replicas: 2, devices: ['cpu:0-1'], module: 'actors/critic.js', restart: { maxRestarts: 2 } },
    reward: { replicas: 1, devices: ['cuda:1+cpu:1'], command: ['python3', 'r.py'], node: 'gpu-1' },
    reference: { replicas: 1, devices: ['cpu'], module: 'actors/actor.js' },
  }, [0, 1]);
  t.match(p.roles.actor[1], { role: 'actor', replica: 1, node: 'local', cpus: [1], cuda: null, threads: 1, args: { lr: 1 }, maxRestarts: 0 });
  t.match(p.roles.critic[1], { cpus: [0, 1], threads: 2, maxRestarts: 2 });
  t.match(p.roles.reward[0], { node: 'gpu-1', cpus: [1], cuda: [1], devices: ['cuda:1', 'cpu:1'], command: ['python3', 'r.py'] });
  t.match(p.roles.reference[0], { cpus: null, threads: 2 });
  t.same(parseDevices('x', 'cpu:0-2,5').cpus, [0, 1, 2, 5]);
  const bad: [object, RegExp][] = [
    [{ a: { replicas: 1, devices: ['cpu:0'], module: 'a.js', gpus: 1 } }, /role 'a': unknown field 'gpus'/],
    [{ a: { replicas: 0, devices: ['cpu:0'], module: 'a.js' } }, /'replicas' must be an integer >= 1/],
    [{ a: { replicas: 3, devices: ['cpu:0', 'cpu:1'], module: 'a.js' } }, /one entry shared by all replicas or one per replica \(3\), got 2/],
    [{ a: { replicas: 1, devices: ['cpu:0'], module: 'a.js', command: ['x'] } }, /exactly one of 'module' and 'command'/],
    [{ a: { replicas: 1, devices: ['cpu:0'] } }, /exactly one of 'module' and 'command'/],
    [{ a: { replicas: 1, devices: ['cpu:7'], module: 'a.js' } }, /replica 0: cpu 7 is not available here \(allowed: 0,1\)/],
    [{ a: { replicas: 1, devices: ['tpu:0'], module: 'a.js' } }, /device 'tpu:0' must look like/],
    [{ a: { replicas: 1, devices: ['cpu:1-0'], module: 'a.js' } }, /range '1-0' runs backwards/],
    [{ a: { replicas: 1, devices: ['cuda'], module: 'a.js' } }, /needs a device index/],
    [{ A: { replicas: 1, devices: ['cpu'], module: 'a.js' } }, /role names are lower-case/],
    [{ a: { replicas: 1, devices: ['cpu'], module: 'a.ts' } }, /compiled role file/],
    [{ a: { replicas: 3, devices: ['cpu'], module: 'a.js', node: ['local', 'x'] } }, /'node' needs one name shared by all replicas or one per replica \(3\), got 2/],
    [{ a: { replicas: 1, devices: ['cpu'], module: 'a.js', node: ['Bad Name'] } }, /'node' must be a node name like 'local' or 'gpu-1', or a list of them/],
    [{}, /no roles/],
  ];
  for (const [plan, why] of bad) t.throws(() => planPlacement(plan as never, [0, 1]), why);
});

t.test('spawn command and start-up variables', async (t) => {
  const [reward] = planPlacement({ reward: { replicas: 1, devices: ['cuda:1+cpu:0-1'], command: ['python3', 'r.py'], args: { k: 'v' } } }, [0, 1]).roles.reward;
  const spec = { plan: reward, token: 'tk', endpoint: 'ipc:///tmp/x.sock', heartbeatMs: 100, coordinatorTimeoutMs: 900 };
  const { argv, env } = NodeAgent.commandFor(spec);
  t.same(argv, ['taskset', '-c', '0,1', 'python3', 'r.py']);
  t.equal(env.CUDA_VISIBLE_DEVICES, '1');
  t.equal(env.OMP_NUM_THREADS, '2');
  t.equal(env.GLIBC_TUNABLES, withMallocPolicy(process.env.GLIBC_TUNABLES), 'roles keep freed memory (agent.ts says why)');
  t.equal(withMallocPolicy(undefined), ROLE_MALLOC_TUNABLES.join(':'));
  t.equal(withMallocPolicy('glibc.pthread.rseq=0'), ['glibc.pthread.rseq=0', ...ROLE_MALLOC_TUNABLES].join(':'));
  t.equal(withMallocPolicy('glibc.malloc.hugetlb=1'), 'glibc.malloc.hugetlb=1', 'a user\'s malloc settings win');
  t.match(readStartup(env), { endpoint: 'ipc:///tmp/x.sock', role: 'reward', replica: 0, token: 'tk', threads: 2, devices: ['cuda:1', 'cpu:0-1'], args: { k: 'v' }, heartbeatMs: 100, coordinatorTimeoutMs: 900, parentPid: process.pid });
  const [actor] = planPlacement({ actor: { replicas: 1, devices: ['cpu:1'], module: 'actors/actor.js' } }, [0, 1]).roles.actor;
  const a = NodeAgent.commandFor({ ...spec, plan: actor });
  t.same(a.argv, ['taskset', '-c', '1', process.execPath, join(repoRoot, 'dist/actors/actor.js')]);
  t.equal(a.env.CUDA_VISIBLE_DEVICES, '', 'a role without cuda sees no GPU');
  const s: RoleStartup = { ...readStartup(env), curve: { serverKey: 'a'.repeat(40), publicKey: 'b'.repeat(40), secretKey: 'c'.repeat(40) } };
  t.same(readStartup(startupEnv(s)), s, 'start-up variables round trip');
  t.throws(() => readStartup({ ...env, QUARTET_ARGS: '[1]' }), /QUARTET_ARGS must be a JSON object/);
  t.throws(() => readStartup({ ...env, QUARTET_REPLICA: 'x' }), /QUARTET_REPLICA must be a non-negative integer/);
  t.throws(() => readStartup({}), /QUARTET_ENDPOINT is not set/);
});

t.test('options are checked by name', async (t) => {
  t.throws(() => resolveOptions({ runDir: '/x', heartbeat: 5 } as never), /unknown option 'heartbeat'/);
  t.throws(() => resolveOptions({ runDir: '/x', listen: 'tcp://h' }), /'listen' must look like tcp:\/\/HOST:PORT/);
  t.throws(() => resolveOptions({ runDir: '/x', heartbeatMs: 500, peerTimeoutMs: 600 }), /'peerTimeoutMs' must be at least twice 'heartbeatMs'/);
  t.equal(resolveOptions({ runDir: '/x' }).heartbeatMs, 500);
  const keys = generateRunKeys();
  t.throws(() => resolveOptions({ runDir: '/x', keys }), /'keys' are for tcp; give 'listen' too/);
  t.throws(() => resolveOptions({ runDir: '/x', listen: 'tcp://h:1', keys: { server: keys.server } as never }), /'keys' must be \{server, node\}/);
  t.equal(resolveOptions({ runDir: '/x', listen: 'tcp://h:1', keys }).keys, keys);
});

t.test('run keys: made once in the run directory (owner-only), the same on every read; a damaged file is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qkeys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'keys', 'run.json');
  const a = runKeysIn(file);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(runKeysIn(file), a, 'read back, not made again');
  writeFileSync(file, JSON.stringify({ ...a, node: { publicKey: 'short', secretKey: a.node.secretKey } }));
  t.throws(() => runKeysIn(file), new RegExp(`run keys ${file}: 'node.publicKey' must be a 40-character Z85 key`));
  writeFileSync(file, '{');
  t.throws(() => runKeysIn(file), new RegExp(`run keys ${file}: `));
});

t.test('Z85 (the spec\'s test vector)', async (t) => {
  t.equal(z85Encode(Uint8Array.from([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])), 'HelloWorld');
});

t.test('src/runtime knows processes and messages, not models (ARCHITECTURE.md section 8)', async (t) => {
  const dir = join(repoRoot, 'src/runtime');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    const imports = [...src.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
    const bad = imports.filter((i) => /(^|\/)(models|tensor|coordinator\/|native)(\/|\.js$)/.test(i) && !i.startsWith('./'));
    t.same(bad, [], `${f} imports nothing from models, tensor or the native addon`);
  }
});
