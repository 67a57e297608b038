// The HTTP reward role (actors/reward-http.ts) against a real HTTP server this
// test starts: texts go out as JSON in batches, at most maxConcurrency POSTs
// at once; a 500, a reset and a slow answer are retried; a refused connection
// and a server that keeps failing end the call naming the URL and the status;
// through the coordinator's reward client the error names role, replica,
// method, code and quotes the role's log.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { RewardClient } from '../../src/coordinator/reward-client.js';
import { startRuntime } from '../../src/runtime/runtime.js';
import type { HttpRewardArgs } from '../../src/roles/args.js';
import { tempRunDir } from '../runtime/helpers.js';

interface Body { prompts: string[]; answers: string[]; eos: boolean[] }
type Behaviour = (body: Body, n: number, res: http.ServerResponse) => void;

/** A scorer: the count of 'a' in each answer. `behave` may answer otherwise (n: the request's number, from 1). */
async function server(t: Test, behave?: Behaviour) {
  const seen: Body[] = [];
  let inFlight = 0, maxInFlight = 0;
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
      seen.push(body);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      res.on('close', () => inFlight--);
      if (behave) return behave(body, seen.length, res);
      // A little time in the server, so that concurrent POSTs overlap.
      setTimeout(() => res.end(JSON.stringify({ scores: body.answers.map((a) => a.split('a').length - 1) })), 30);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/score`, seen, maxInFlight: () => maxInFlight };
}

const base = { connectTimeoutMs: 2000, readTimeoutMs: 2000, retries: 2, backoffMs: 20, maxConcurrency: 2, batchSize: 0 };

async function role(t: Test, args: HttpRewardArgs) {
  const runDir = tempRunDir(t);
  const rt = await startRuntime({ reward: { replicas: 1, devices: ['cpu:0'], module: 'actors/reward-http.js', args: { ...args } } }, { runDir, peerTimeoutMs: 10_000 });
  t.teardown(() => rt.shutdown());
  return rt;
}

const answers = ['banana', 'apple', 'cherry', 'a a a', 'zzz'];
const meta = { promptLength: 1, prompts: answers.map((_, i) => `prompt ${i}`), answers, eos: [true, false, true, true, false] };
const ids = { dtype: 'i32' as const, shape: [5, 2], data: new Int32Array(10).fill(1) };
const tensors = { ids, mask: ids };
const want = [3, 1, 0, 3, 0];

t.test('texts out, scores back: batched, at most maxConcurrency POSTs at once', async (t) => {
  const s = await server(t);
  const rt = await role(t, { ...base, url: s.url, batchSize: 2 });
  const r = await rt.role('reward', 0).call('score', { meta, tensors });
  t.same([...r.tensors.scores.data], want);
  t.same(s.seen.map((b) => b.answers.length).sort(), [1, 2, 2], 'five rows in POSTs of at most 2');
  t.same(s.seen.find((b) => b.answers[0] === 'banana'), { prompts: ['prompt 0', 'prompt 1'], answers: ['banana', 'apple'], eos: [true, false] }, 'prompts, answers and eos as sent');
  t.equal(s.maxInFlight(), 2, 'maxConcurrency 2: never more POSTs at once');
  t.match(r.metrics, { http_posts: 3, http_retries: 0, mean_score: 7 / 5 });
});

t.test('a 500, a reset connection and a slow answer are retried; then the scores come', async (t) => {
  const s = await server(t, (body, n, res) => {
    if (n === 1) { res.statusCode = 500; return res.end('overloaded'); }
    if (n === 2) return res.socket?.destroy();
    if (n === 3) return setTimeout(() => res.end('{"scores": []}'), 1500);
    res.end(JSON.stringify({ scores: body.answers.map((a) => a.length) }));
  });
  const rt = await role(t, { ...base, url: s.url, retries: 3, readTimeoutMs: 500 });
  const r = await rt.role('reward', 0).call('score', { meta, tensors });
  t.same([...r.tensors.scores.data], answers.map((a) => a.length));
  t.equal(r.metrics.http_retries, 3);
});

t.test('a server that keeps failing, a refused connection, a 400: clear failures naming the URL', async (t) => {
  const s = await server(t, (_b, _n, res) => { res.statusCode = 503; res.statusMessage = 'Service Unavailable'; res.end('down for maintenance'); });
  const rt = await role(t, { ...base, url: s.url });
  await t.rejects(rt.role('reward', 0).call('score', { meta, tensors }), {
    code: 'method_failed', retriable: false,
    message: new RegExp(`POST ${s.url} failed after 3 attempts: HTTP 503 Service Unavailable: down for maintenance`),
  });
  t.equal(s.seen.length, 3, 'sent once and retried twice');

  const bad = await server(t, (_b, _n, res) => { res.statusCode = 400; res.end('no such field'); });
  const rt400 = await role(t, { ...base, url: bad.url });
  await t.rejects(rt400.role('reward', 0).call('score', { meta, tensors }), { message: /failed: HTTP 400 Bad Request: no such field/ });
  t.equal(bad.seen.length, 1, 'a 400 is not retried');

  // A port nobody listens on: take one from a server and close it.
  const gone = http.createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(gone.address() as AddressInfo).port}/score`;
  await new Promise<void>((r) => gone.close(() => r()));
  const rtGone = await role(t, { ...base, url });
  const texts = { decode: () => ({ prompts: meta.prompts, answers, eos: meta.eos }) };
  const client = new RewardClient(rtGone, texts, { retries: 2, backoffMs: 10 });
  const err = await client.score({ B: 5, T: 2, P: 1, ids: ids.data, mask: ids.data }, 7).then(() => null, (e: Error) => e);
  t.ok(err, 'the call fails');
  t.match(err!.message, new RegExp(`^reward/0\\.score at ppo step 7 failed \\(not retriable\\): method_failed: POST ${url} failed after 3 attempts: ECONNREFUSED`));
  t.match(err!.message, /Last lines of .*reward-0\.log:\n[^]*retry 1 of 2/, "the role's log lines are quoted");
});
