// A second machine: `quartet node` runs in its own network namespace (a veth
// pair with private 10.203.x.y/30 addresses that exist only on the test's own
// interfaces) and joins the coordinator over tcp + CURVE; the coordinator
// places a role there and calls it. Without root or `ip netns`, the same over
// loopback.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Runtime } from '../../src/runtime/runtime.js';
import { generateRunKeys, writeNodeKeys } from '../../src/runtime/curve.js';
import { distPath, repoRoot } from '../../src/util/paths.js';
import { alive, cpusAllowed, processesMentioning, tempRunDir, waitFor } from './helpers.js';

const ECHO = 'test/fixtures/roles/echo.js';

function hasPython(): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import zmq, msgpack'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Net { coordinatorHost: string; wrap: string[]; cleanup(): void; label: string }

/** A namespace with a veth pair when possible, else plain loopback. */
function makeNet(): Net {
  const loopback: Net = { coordinatorHost: '127.0.0.1', wrap: [], cleanup() {}, label: 'loopback (no root or no ip netns)' };
  if (process.getuid?.() !== 0) return loopback;
  const tag = `${process.pid % 100000}`;
  const ns = `qrt${tag}`, outside = `qva${tag}`, inside = `qvb${tag}`;
  const subnet = `10.203.${process.pid % 250}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const cleanup = () => {
    try { ip('link', 'del', outside); } catch { /* gone with the namespace */ }
    try { ip('netns', 'del', ns); } catch { /* never made */ }
  };
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', ns);
    ip('addr', 'add', `${subnet}.1/30`, 'dev', outside);
    ip('link', 'set', outside, 'up');
    ip('-n', ns, 'addr', 'add', `${subnet}.2/30`, 'dev', inside);
    ip('-n', ns, 'link', 'set', inside, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
  } catch (e) {
    cleanup();
    return { ...loopback, label: `loopback (ip netns failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()})` };
  }
  return { coordinatorHost: `${subnet}.1`, wrap: ['ip', 'netns', 'exec', ns], cleanup, label: `network namespace ${ns}, ${subnet}.0/30` };
}

t.test('a node joins over tcp + CURVE and hosts a role', async (t) => {
  const net = makeNet();
  t.teardown(() => net.cleanup());
  t.comment(`second machine: ${net.label}`);
  const runDir = tempRunDir(t);
  const rt = await Runtime.open({ runDir, listen: `tcp://${net.coordinatorHost}:*`, heartbeatMs: 100, peerTimeoutMs: 5000 });
  t.teardown(() => rt.shutdown());
  const endpoint = rt.tcpEndpoint!;

  const argv = [...net.wrap, process.execPath, join(repoRoot, 'bin/quartet.js'), 'node', '--coordinator', endpoint, '--keys', rt.nodeKeysFile!, '--name', 'remote'];
  const agent: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let agentOut = '';
  agent.stdout!.on('data', (b) => (agentOut += b));
  agent.stderr!.on('data', (b) => (agentOut += b));
  t.teardown(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
    for (const p of processesMentioning(endpoint)) process.kill(p, 'SIGKILL');
  });

  // The Python example joins over tcp too when Debian's pyzmq is there (its CURVE client).
  const python = hasPython();
  await rt.start({
    actor: { replicas: 1, devices: ['cpu:0'], module: ECHO },
    reward: { replicas: 1, devices: ['cpu:1'], module: ECHO, node: 'remote', restart: { maxRestarts: 1 } },
    // A group across the two machines: its gradient averaging goes through the coordinator's relay.
    grad: { replicas: 2, devices: ['cpu:0', 'cpu:1'], module: ECHO, node: ['local', 'remote'] },
    ...(python ? { pyreward: { replicas: 1, devices: ['cpu:0'], node: 'remote', command: ['/usr/bin/python3', join(repoRoot, 'examples/reward-python/reward.py')] } } : {}),
  });
  t.same(rt.nodeNames(), ['remote']);

  const r = await rt.role('reward', 0).call('placement');
  const pid = r.meta.pid as number;
  t.equal(cpusAllowed(pid), '1', 'the remote role is pinned by its agent');
  if (net.wrap.length) t.not(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'it runs in the other network namespace');
  const x = { dtype: 'f32' as const, shape: [3, 1000], data: Float32Array.from({ length: 3000 }, (_, i) => i * 0.5) };
  const back = await rt.role('reward', 0).call('echo', { tensors: { x } });
  t.same([...back.tensors.x.data], [...x.data], 'a tensor crosses both ways over tcp + CURVE');
  t.equal((await rt.role('actor', 0).call('ping')).meta.pid !== pid, true, 'the local role runs beside it');
  const rows = { dtype: 'f32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 5, 6, 7]) };
  for (let round = 0; round < 2; round++) {
    const mean = await rt.group('grad').call('allreduce', { tensors: { x: rows } });
    t.same([...mean.tensors.x.data], [3, 4, 5, 3, 4, 5], `round ${round + 1}: the replicas on both machines end with the mean of their shards`);
  }
  const relayPort = Number(/:(\d+)$/.exec((await rt.group('grad').call('allreduce', { tensors: { x: rows } })).replies[1].meta.endpoint as string)![1]);
  t.match((await rt.role('grad', 1).call('placement')).meta.cpus, '1');
  if (python) {
    const ids = { dtype: 'i32' as const, shape: [1, 4], data: Int32Array.from([5, 6, 6, 7]) };
    const py = await rt.role('pyreward', 0).call('score', { meta: { promptLength: 1, prompts: ['p'], answers: ['eee'], eos: [true] }, tensors: { ids, mask: { ...ids, data: Int32Array.from([1, 1, 1, 1]) } } });
    t.equal((py.tensors.scores.data as Float32Array)[0], 3, 'the Python role answers over tcp + CURVE');
  } else t.comment('no Python role over tcp: /usr/bin/python3 lacks zmq or msgpack');

  // Supervision works through the agent: kill -9 the remote role mid-request, and the call goes again.
  const call = rt.role('reward', 0).call('sleep', { meta: { ms: 1500 } });
  await new Promise((res) => setTimeout(res, 200));
  process.kill(pid, 'SIGKILL');
  t.same((await call).meta, { slept: 1500 }, 'the call is answered by the restarted process');
  t.not((await rt.role('reward', 0).call('ping')).meta.pid, pid, 'restarted on the remote node');
  const log = readFileSync(join(runDir, 'logs', 'reward-0.log'), 'utf8');
  t.match(log, /started reward\/0 on remote/, 'the remote role has its log on the coordinator');
  t.match(log, /was killed by SIGKILL/);

  await rt.shutdown();
  await waitFor('the node agent to exit after bye', () => agent.exitCode !== null, 8000);
  t.equal(agent.exitCode, 0, `agent exit code (its output: ${agentOut.trim().split('\n').slice(-3).join(' | ')})`);
  t.notOk(alive(pid));
  t.same(processesMentioning(endpoint), [], 'no remote role is left');
  t.same(processesMentioning(runDir), [], 'no local role is left');
  const [, host, port] = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint)!;
  const server = createServer();
  await new Promise<void>((res, rej) => server.once('error', rej).listen(Number(port), host, () => res()));
  server.close();
  t.pass(`port ${port} is free again`);
  const relay = createServer();
  await new Promise<void>((res, rej) => relay.once('error', rej).listen(relayPort, host, () => res()));
  relay.close();
  t.pass(`the relay's port ${relayPort} is free again`);
});

t.test('kill -9 the coordinator: the node agent and its roles exit within a few seconds', async (t) => {
  const runDir = tempRunDir(t);
  const coord = spawn(process.execPath, [distPath('test/fixtures/roles/coordinator-main.js'), runDir, 'tcp://127.0.0.1:*'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: coord.stdout! })[Symbol.asyncIterator]();
  const { endpoint, keys } = JSON.parse((await lines.next()).value) as { endpoint: string; keys: string };
  const agent = spawn(process.execPath, [join(repoRoot, 'bin/quartet.js'), 'node', '--coordinator', endpoint, '--keys', keys, '--name', 'remote'], { stdio: 'ignore' });
  t.teardown(() => {
    for (const c of [coord, agent]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const p of [...processesMentioning(endpoint), ...processesMentioning(runDir)]) process.kill(p, 'SIGKILL');
  });
  const { pids } = JSON.parse((await lines.next()).value) as { pids: number[] };
  t.ok([...pids, agent.pid!].every(alive), 'the local role, the agent and the remote role are up');
  coord.kill('SIGKILL');
  const took = await waitFor('the agent and every role to exit', () => ![...pids, agent.pid!].some(alive), 6000);
  t.pass(`all gone ${took} ms after the coordinator was killed`);
  t.same(processesMentioning(endpoint), []);
});

t.test('a node agent still waiting to join stops at once on SIGTERM', async (t) => {
  const runDir = tempRunDir(t);
  const keys = writeNodeKeys(join(runDir, 'node.json'), generateRunKeys());
  // A port nobody listens on: the agent keeps trying to join.
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  const port = (s.address() as { port: number }).port;
  await new Promise((res) => s.close(res));
  const agent = spawn(process.execPath, [join(repoRoot, 'bin/quartet.js'), 'node', '--coordinator', `tcp://127.0.0.1:${port}`, '--keys', keys, '--name', 'idle'], { stdio: 'ignore' });
  t.teardown(() => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
  });
  // Long enough for the agent to be up and waiting on a loaded 2-core machine: a SIGTERM before
  // Node has installed its handler kills it by signal (exitCode stays null), which is not what this tests.
  await new Promise((res) => setTimeout(res, 3000));
  t.equal(agent.exitCode, null, 'still waiting for a coordinator');
  agent.kill('SIGTERM');
  await waitFor('the agent to exit after SIGTERM', () => agent.exitCode !== null, 10_000);
  t.equal(agent.exitCode, 0);
});
