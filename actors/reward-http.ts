// The built-in HTTP reward role (reward.kind http): `score` POSTs the
// decoded texts as JSON to reward.url, OpenRLHF's remote reward model
// convention, and answers with the scores it gets back. A role process of
// its own rather than HTTP calls in the coordinator: the coordinator knows
// roles by their methods only, and this one restarts, times out and shows in
// the logs like every other role.
//
//   POST <url>  {"prompts": [str], "answers": [str], "eos": [bool]}
//   200         {"scores": [number]}        one per row, in order
//
// A POST that cannot connect within connectTimeoutMs, has no full answer
// readTimeoutMs after it was sent, is refused or reset, or is answered 5xx or
// 429, is sent again after backoffMs (doubled each time), `retries` times;
// then the call fails naming the URL and the last HTTP status. Other 4xx
// answers and malformed bodies fail at once: sending them again cannot help.
// Rows go in POSTs of batchSize (0: one POST per call), maxConcurrency at once.
import http from 'node:http';
import https from 'node:https';
import type { HttpRewardArgs } from '../src/roles/args.js';
import { checkRows, readMeta } from '../src/roles/methods.js';
import { RuntimeError } from '../src/runtime/protocol.js';
import { serveRole } from '../src/runtime/role-server.js';

class PostFailure extends Error {
  constructor(message: string, readonly retriable: boolean) {
    super(message);
  }
}

function readArgs(a: Record<string, unknown>): HttpRewardArgs {
  const url = a.url;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new Error(`reward-http: args.url must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
  const n = (k: keyof HttpRewardArgs, min: number) => {
    const v = a[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new Error(`reward-http: args.${k} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    url, connectTimeoutMs: n('connectTimeoutMs', 1), readTimeoutMs: n('readTimeoutMs', 1), retries: n('retries', 0),
    backoffMs: n('backoffMs', 0), maxConcurrency: n('maxConcurrency', 1), batchSize: n('batchSize', 0),
  };
}

/** One POST: the parsed JSON of a 2xx answer, or a PostFailure saying whether to try again. */
function post(args: HttpRewardArgs, agent: http.Agent, body: string): Promise<unknown> {
  const url = new URL(args.url);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(url, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const fail = (e: PostFailure) => { clearTimeout(connectTimer); clearTimeout(readTimer); req.destroy(); reject(e); };
    const connectTimer = setTimeout(() => fail(new PostFailure(`no connection within ${args.connectTimeoutMs} ms`, true)), args.connectTimeoutMs);
    const readTimer = setTimeout(() => fail(new PostFailure(`no answer within ${args.readTimeoutMs} ms`, true)), args.readTimeoutMs);
    req.on('socket', (sock) => {
      // A kept-alive socket is connected already.
      if (!sock.connecting) clearTimeout(connectTimer);
      else sock.once('connect', () => clearTimeout(connectTimer));
    });
    req.on('error', (e: NodeJS.ErrnoException) => fail(new PostFailure(e.code ? `${e.code} (${e.message})` : e.message, true)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => fail(new PostFailure(`the answer broke off: ${e.message}`, true)));
      res.on('end', () => {
        clearTimeout(connectTimer);
        clearTimeout(readTimer);
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const said = text.trim().slice(0, 200);
          return reject(new PostFailure(`HTTP ${status} ${res.statusMessage ?? ''}`.trim() + (said ? `: ${said}` : ''), status >= 500 || status === 429));
        }
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new PostFailure(`HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`, false));
        }
      });
    });
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

await serveRole((ctx) => {
  const args = readArgs(ctx.args);
  const agent = new (args.url.startsWith('https:') ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: args.maxConcurrency });
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  /** At most maxConcurrency POSTs at once, over all calls this role serves. */
  const slot = async <T>(f: () => Promise<T>): Promise<T> => {
    while (inFlight >= args.maxConcurrency) await new Promise<void>((r) => waiting.push(r));
    inFlight++;
    try {
      return await f();
    } finally {
      inFlight--;
      waiting.shift()?.();
    }
  };
  const stats = { posts: 0, retries: 0 };

  /** The scores of rows [a, b): one POST, sent again while it fails in a way that may pass. */
  const scoreRows = async (prompts: string[], answers: string[], eos: boolean[]): Promise<{ scores: number[]; ms: number; retries: number }> => {
    const body = JSON.stringify({ prompts, answers, eos });
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now();
      try {
        stats.posts++;
        const got = await slot(() => post(args, agent, body)) as { scores?: unknown };
        const s = got?.scores;
        if (!Array.isArray(s) || s.length !== answers.length || !s.every((v) => typeof v === 'number' && Number.isFinite(v)))
          throw new PostFailure(`the answer must be {"scores": [${answers.length} finite numbers]}, got ${JSON.stringify(got).slice(0, 200)}`, false);
        return { scores: s as number[], ms: performance.now() - t0, retries: attempt };
      } catch (e) {
        const f = e instanceof PostFailure ? e : new PostFailure((e as Error).message, false);
        if (f.retriable && attempt < args.retries) {
          stats.retries++;
          process.stderr.write(`POST ${args.url} failed (${f.message}); retry ${attempt + 1} of ${args.retries}\n`);
          await sleep(args.backoffMs * 2 ** attempt);
          continue;
        }
        const tries = attempt > 0 ? ` after ${attempt + 1} attempts` : '';
        throw new RuntimeError('method_failed', `POST ${args.url} failed${tries}: ${f.message}`, false);
      }
    }
  };

  return {
    concurrent: true,
    methods: {
      score: async (req) => {
        const meta = readMeta('reward', 'score', req.meta);
        const B = meta.answers.length;
        checkRows('reward', 'score', meta, req.tensors.ids?.shape[0] ?? B);
        const per = args.batchSize > 0 ? args.batchSize : Math.max(1, B);
        const parts: Promise<{ scores: number[]; ms: number; retries: number }>[] = [];
        for (let a = 0; a < B; a += per) parts.push(scoreRows(meta.prompts.slice(a, a + per), meta.answers.slice(a, a + per), meta.eos.slice(a, a + per)));
        const done = await Promise.all(parts);
        const scores = Float32Array.from(done.flatMap((d) => d.scores));
        const mean = (xs: number[]) => (xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : 0);
        return {
          tensors: { scores: { dtype: 'f32', shape: [B], data: scores } },
          metrics: { mean_score: mean([...scores]), http_posts: done.length, http_retries: done.reduce((s, d) => s + d.retries, 0), http_ms: mean(done.map((d) => d.ms)) },
        };
      },
    },
    onShutdown: () => agent.destroy(),
    stats: () => ({ url: args.url, posts: stats.posts, retries: stats.retries, in_flight: inFlight }),
  };
});
