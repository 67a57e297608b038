// Bad input is refused and logged, and the receiver keeps serving: malformed
// frames, a wrong protocol version, requests before hello, a hello nobody
// expected, tcp peers without this run's CURVE key (coordinator side), and
// malformed requests and unknown methods (role side).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import t from 'tap';
import * as zmq from 'zeromq';
import { Runtime, startRuntime } from '../../src/runtime/runtime.js';
import { decode, encode, type Message } from '../../src/runtime/protocol.js';
import { startupEnv } from '../../src/runtime/startup.js';
import { distPath } from '../../src/util/paths.js';
import { alive, tempRunDir, waitFor } from './helpers.js';

const ECHO = 'test/fixtures/roles/echo.js';
const packr = new Packr({ useRecords: false });

async function recv(sock: zmq.Dealer, ms = 2000): Promise<Message | null> {
  sock.receiveTimeout = ms;
  try {
    const d = decode(await sock.receive());
    if (!d.ok) throw d.error;
    return d.msg;
  } catch (e) {
    if ((e as { code?: string }).code === 'EAGAIN') return null;
    throw e;
  }
}

function coordinatorLog(rt: Runtime): string {
  try {
    return readFileSync(join(rt.runDir, 'logs', 'coordinator.log'), 'utf8');
  } catch {
    return '';
  }
}

t.test('the coordinator refuses bad peers and keeps serving', async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO } }, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());
  const sock = new zmq.Dealer({ linger: 0 });
  t.teardown(() => sock.close());
  sock.connect(rt.ipcEndpoint);

  await sock.send([Buffer.from([0xc1, 0xff, 0x00])]);
  t.match(await recv(sock), { kind: 'err', error: { code: 'bad_message', message: /not msgpack/ } }, 'garbage header');

  await sock.send([packr.pack({ version: 99, kind: 'hello', id: 4, sender: 'x' })]);
  t.match(await recv(sock), { kind: 'err', id: 4, error: { code: 'bad_version' } }, 'wrong protocol version');

  await sock.send(encode({ kind: 'req', id: 5, method: 'score', sender: 'x' }));
  t.match(await recv(sock), { kind: 'err', id: 5, error: { code: 'not_hello' } }, 'request before hello');

  await sock.send(encode({ kind: 'hello', id: 6, sender: 'reward/0', meta: { role: 'reward', replica: 0, token: 'forged' } }));
  t.match(await recv(sock), { kind: 'err', id: 6, error: { code: 'unexpected_peer', message: /not expecting this process/ } }, 'hello with a forged token');

  await sock.send([packr.pack({ version: 1, kind: 'req', id: 7, method: 'x', sender: 'x', tensors: [{ name: 'a', dtype: 'f32', shape: [4] }] })]);
  t.match(await recv(sock), { kind: 'err', id: 7, error: { code: 'bad_message', message: /lists 1 tensors but 0 tensor frames/ } }, 'missing tensor frame');

  await sock.send([packr.pack({ version: 1, kind: 'rep', id: 8, sender: 'x', tensors: [{ name: 'a', dtype: 'f32', shape: [4] }] }), Buffer.alloc(15)]);
  t.match(await recv(sock), { kind: 'err', id: 8, error: { code: 'bad_message', message: /needs 16 bytes, frame has 15/ } }, 'short tensor frame');

  const log = coordinatorLog(rt);
  t.match(log, /refused a message from unknown peer .*bad_version/);
  t.match(log, /refused a 'req' .*did not say hello/);
  t.match(log, /refused hello from reward\/0/);
  t.equal((await rt.role('reward', 0).call('echo', { meta: { still: 'serving' } })).meta.still, 'serving');
});

t.test('tcp: peers without this run\'s CURVE key are refused', async (t) => {
  const runDir = tempRunDir(t);
  const rt = await Runtime.open({ runDir, listen: 'tcp://127.0.0.1:*', peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());
  await rt.start({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO } });
  const keys = JSON.parse(readFileSync(rt.nodeKeysFile!, 'utf8'));
  t.equal((await import('node:fs')).statSync(rt.nodeKeysFile!).mode & 0o777, 0o600, 'the node key file is private');
  const hello = encode({ kind: 'hello', id: 1, sender: 'node/x', meta: { role: 'node', name: 'x' } });

  const plain = new zmq.Dealer({ linger: 0 });
  t.teardown(() => plain.close());
  plain.connect(rt.tcpEndpoint!);
  await plain.send(hello);
  t.equal(await recv(plain, 700), null, 'a plain tcp peer gets nothing back');

  const other = zmq.curveKeyPair();
  const stranger = new zmq.Dealer({ linger: 0, curveServerKey: keys.serverKey, curvePublicKey: other.publicKey, curveSecretKey: other.secretKey });
  t.teardown(() => stranger.close());
  stranger.connect(rt.tcpEndpoint!);
  await stranger.send(hello);
  t.equal(await recv(stranger, 700), null, 'a peer with a key of its own gets nothing back');

  await waitFor('both refusals in the log', () => /handshake refused/.test(coordinatorLog(rt)) && /CURVE key is not this run's/.test(coordinatorLog(rt)), 3000);
  t.pass('both refusals are logged');

  const member = new zmq.Dealer({ linger: 0, curveServerKey: keys.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey });
  t.teardown(() => member.close());
  member.connect(rt.tcpEndpoint!);
  await member.send(encode({ kind: 'req', id: 3, method: 'spawn', sender: 'x' }));
  t.match(await recv(member), { kind: 'err', id: 3, error: { code: 'not_hello' } }, 'the run\'s key gets through, and hello is still required');
  t.equal((await rt.role('reward', 0).call('ping')).meta.pid !== undefined, true, 'the coordinator keeps serving');
});

t.test('a role refuses bad requests and keeps serving', async (t) => {
  const runDir = tempRunDir(t);
  const router = new zmq.Router({ linger: 0 });
  t.teardown(() => router.close());
  const endpoint = `ipc://${runDir}/fake.sock`;
  await router.bind(endpoint);
  const env = startupEnv({
    endpoint, role: 'reward', replica: 0, token: 'tok', threads: 1, devices: ['cpu'], args: {},
    heartbeatMs: 200, coordinatorTimeoutMs: 5000, parentPid: process.pid,
  });
  const child = spawn(process.execPath, [distPath(ECHO)], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b) => (stderr += b));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });

  const next = async (kind: string): Promise<[Buffer, Message]> => {
    for (;;) {
      const [id, ...frames] = await router.receive();
      const d = decode(frames);
      if (!d.ok) throw d.error;
      if (d.msg.kind === kind) return [id, d.msg];
    }
  };
  const [id, hello] = await next('hello');
  t.match(hello.meta, { role: 'reward', replica: 0, token: 'tok', pid: child.pid, capabilities: { methods: ['ping', 'stats', 'shutdown', 'echo'], language: 'javascript' } });
  await router.send([id, ...encode({ kind: 'ready', id: 0, sender: 'coordinator' })]);

  await router.send([id, Buffer.from('not msgpack at all')]);
  await router.send([id, packr.pack({ version: 2, kind: 'req', id: 11, method: 'echo', sender: 'coordinator' })]);
  t.match((await next('err'))[1], { id: 11, error: { code: 'bad_version' } });
  await router.send([id, packr.pack({ version: 1, kind: 'req', id: 12, method: 'echo', sender: 'coordinator', tensors: [{ name: 'a', dtype: 'q7', shape: [1] }] }), Buffer.alloc(1)]);
  t.match((await next('err'))[1], { id: 12, error: { code: 'bad_message', message: /known dtype/ } });
  await router.send([id, ...encode({ kind: 'req', id: 13, method: 'nope', sender: 'coordinator' })]);
  t.match((await next('err'))[1], { id: 13, error: { code: 'unknown_method', message: /has no method 'nope'/ } });
  await router.send([id, ...encode({ kind: 'req', id: 14, method: 'echo', sender: 'coordinator', meta: { n: 1 } })]);
  t.match((await next('rep'))[1], { id: 14, meta: { n: 1 } }, 'still serving');
  t.match(stderr, /refused a message: header is not msgpack/, 'the role logged the refusal');

  await router.send([id, ...encode({ kind: 'bye', id: 0, sender: 'coordinator' })]);
  await next('bye');
  await waitFor('the role to exit after bye', () => child.exitCode !== null, 3000);
  t.equal(child.exitCode, 0);
  t.notOk(alive(child.pid!));
});

t.test('protocol edges: a malformed reply fails its call at once; methods are own properties only; floods are logged with a count', async (t) => {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({
    bad: { replicas: 1, devices: ['cpu:0'], command: [process.execPath, distPath('test/fixtures/roles/bad-reply.js')] },
    reward: { replicas: 1, devices: ['cpu:0'], module: ECHO },
  }, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());
  const t0 = Date.now();
  await t.rejects(rt.role('bad', 0).call('anything'), { code: 'bad_message', message: /bad\/0\.anything: its reply was malformed: .*needs 16 bytes, frame has 15/ });
  t.ok(Date.now() - t0 < 5000, `failed in ${Date.now() - t0} ms, not at the deadline`);

  for (const m of ['constructor', 'toString', '__proto__', 'hasOwnProperty'])
    await t.rejects(rt.role('reward', 0).call(m), { code: 'unknown_method' }, `'${m}' is not a method`);

  const sock = new zmq.Dealer({ linger: 0 });
  t.teardown(() => sock.close());
  sock.connect(rt.ipcEndpoint);
  for (let i = 0; i < 200; i++) await sock.send([Buffer.from([0xc1, i & 0xff])]);
  t.equal((await rt.role('reward', 0).call('echo', { meta: { ok: 1 } })).meta.ok, 1, 'still serving');
  await new Promise((r) => setTimeout(r, 300));
  await rt.shutdown();
  const refused = coordinatorLog(rt).split('\n').filter((l) => /refused a message from unknown peer/.test(l));
  t.ok(refused.length <= 5, `${refused.length} lines for 200 refusals`);
  t.match(coordinatorLog(rt), /and 19\d more refused messages from unidentified peers/, 'the rest are counted');
});

t.test('a role that cannot start exits with code 78: no restarts, its message shown', async (t) => {
  const runDir = tempRunDir(t);
  const t0 = Date.now();
  await t.rejects(
    startRuntime({ actor: { replicas: 1, devices: ['cpu:0'], module: ECHO, restart: { maxRestarts: 3 }, args: { failSetup: 'model.safetensors' } } }, { runDir }),
    { code: 'run_failed', message: /role actor\/0 cannot start[^]*cannot read model\.safetensors: tensor 'h\.0\.w' overlaps 'h\.1\.w'/ },
  );
  t.ok(Date.now() - t0 < 15_000, `failed in ${Date.now() - t0} ms`);
  t.equal(readFileSync(join(runDir, 'logs', 'actor-0.log'), 'utf8').match(/started actor\/0/g)?.length, 1, 'started once, never restarted');
});

t.test('a socket folder left by a killed coordinator is reused; an oversized message is dropped', async (t) => {
  const runDir = tempRunDir(t);
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(join(runDir, 'sock'));
  writeFileSync(join(runDir, 'sock', 'c.sock'), 'stale');
  const rt = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: ECHO } }, { runDir, maxMessageBytes: 64 * 1024 });
  t.teardown(() => rt.shutdown());
  const sock = new zmq.Dealer({ linger: 0 });
  t.teardown(() => sock.close());
  sock.connect(rt.ipcEndpoint);
  await sock.send([packr.pack({ version: 1, kind: 'req', id: 9, method: 'x', sender: 'x', tensors: [{ name: 'a', dtype: 'u8', shape: [1 << 20] }] }), Buffer.alloc(1 << 20)]);
  t.equal(await recv(sock, 500), null, 'a 1 MB message from an unknown peer is never read (the cap is 64 KB)');
  t.equal((await rt.role('reward', 0).call('echo', { meta: { ok: 2 } })).meta.ok, 2, 'the role still serves');
});
