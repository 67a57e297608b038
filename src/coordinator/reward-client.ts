// The coordinator's side of `reward.score` (docs/protocol.md): every request
// carries the decoded prompt and answer texts beside the ids, rows are
// sharded over the reward replicas with their own rows' texts, a retriable
// error is sent again (reward.retries, with backoff), and a final failure
// names role, replica, method, step, code, message and the role's last log
// lines. The reply's metrics come back as `reward/<key>` figures, with the
// call's latency per sample.
//
// What the runtime already does is not repeated here: a scorer that dies or
// misses its deadline (reward.timeoutMs, the `score` deadline) is restarted
// and the call sent again by the router, within reward.maxRestarts.
import type { MetaOf } from '../roles/methods.js';
import { RuntimeError, shardRange, type CallResult, type Roles } from '../runtime/index.js';
import type { ScoreTexts } from '../data/score-texts.js';
import { i32 } from './driver.js';
import type { Figures } from './metrics.js';

/** Decodes a batch's texts (src/data/score-texts.ts; tests hand in their own). */
export interface ScoreTextSource {
  decode(ids: Int32Array, mask: Int32Array, B: number, T: number, P: number): ScoreTexts;
}

/** Sequences [B, T] with prompts left-padded to P. */
export interface ScoreBatch {
  B: number;
  T: number;
  P: number;
  ids: Int32Array;
  mask: Int32Array;
}

export interface ScoreSettings {
  /** Sends after the first of a call that failed with a retriable error. */
  retries: number;
  /** Wait before the first retry, doubled for each next one. */
  backoffMs: number;
  /** Named in error messages. */
  step?: number;
}

export interface Scored {
  scores: Float32Array;
  /** `reward/<key>` of the replies' metrics (mean over replicas, weighed by their rows), plus `reward/ms_per_sample` and `reward/retries`. */
  figures: Figures;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class RewardClient {
  constructor(private readonly roles: Roles, private readonly texts: ScoreTextSource, private readonly settings: ScoreSettings) {}

  async score(x: ScoreBatch, step?: number): Promise<Scored> {
    const t0 = performance.now();
    const all = this.texts.decode(x.ids, x.mask, x.B, x.T, x.P);
    const replicas = this.roles.group('reward').size;
    let retries = 0;
    const shards: Promise<CallResult>[] = [];
    for (let i = 0; i < replicas; i++) {
      const [a, b] = shardRange(x.B, replicas, i);
      if (a === b) continue;
      const meta = {
        promptLength: x.P, prompts: all.prompts.slice(a, b), answers: all.answers.slice(a, b), eos: all.eos.slice(a, b),
      } satisfies MetaOf<'reward', 'score'>;
      const tensors = { ids: i32([b - a, x.T], x.ids.subarray(a * x.T, b * x.T)), mask: i32([b - a, x.T], x.mask.subarray(a * x.T, b * x.T)) };
      shards.push(this.withRetries(i, step, () => this.roles.role('reward', i).call('score', { meta, tensors }, { step }), () => retries++));
    }
    const replies = await Promise.all(shards);
    const scores = new Float32Array(x.B);
    let at = 0;
    replies.forEach((r, k) => {
      const s = r.tensors.scores;
      const want = shardRange(x.B, replicas, k)[1] - shardRange(x.B, replicas, k)[0];
      if (!s || s.dtype !== 'f32' || s.data.length !== want)
        throw new Error(`ppo: reward/${k}.score returned ${s ? `${s.dtype}[${s.shape}]` : 'no scores'}, expected f32[${want}]`);
      scores.set(s.data as Float32Array, at);
      at += want;
    });
    // Each replica's figure weighs by its rows: a mean score stays the batch's mean.
    const rows = replies.map((_, k) => shardRange(x.B, replicas, k)[1] - shardRange(x.B, replicas, k)[0]);
    const figures: Figures = {};
    const keys = new Set(replies.flatMap((r) => Object.keys(r.metrics)));
    for (const k of keys) {
      let sum = 0, n = 0;
      replies.forEach((r, i) => { if (typeof r.metrics[k] === 'number') { sum += r.metrics[k] * rows[i]; n += rows[i]; } });
      figures[`reward/${k}`] = sum / n;
    }
    figures['reward/ms_per_sample'] = (performance.now() - t0) / Math.max(1, x.B);
    figures['reward/retries'] = retries;
    return { scores, figures };
  }

  private async withRetries(replica: number, step: number | undefined, call: () => Promise<CallResult>, retried: () => void): Promise<CallResult> {
    const { retries, backoffMs } = this.settings;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (e) {
        if (!(e instanceof RuntimeError)) throw e;
        // The run itself failed (a role out of restarts): its message already says why, with the role's log.
        if (e.code === 'run_failed' || e.code === 'shutting_down') throw e;
        if (e.retriable && attempt < retries) {
          retried();
          await sleep(backoffMs * 2 ** attempt);
          continue;
        }
        throw scoreFailure(e, replica, step, attempt + 1);
      }
    }
  }
}

/** The error the user sees: which scorer, which call, what it said, and its last log lines. */
export function scoreFailure(e: RuntimeError, replica: number, step: number | undefined, attempts: number): Error {
  const at = step !== undefined ? ` at ppo step ${step}` : '';
  const tries = attempts > 1 ? ` after ${attempts} attempts` : e.retriable ? '' : ' (not retriable)';
  const log = e.roleLog?.lines.length ? `\nLast lines of ${e.roleLog.file}:\n${e.roleLog.lines.map((l) => '  ' + l).join('\n')}` : '';
  return new Error(`reward/${replica}.score${at} failed${tries}: ${e.code}: ${e.message}${log}`);
}

/** The mean of each figure over a step's generation batches. */
export function meanFigures(all: readonly Figures[]): Figures {
  const out: Figures = {};
  const keys = new Set(all.flatMap((f) => Object.keys(f)));
  for (const k of keys) {
    const vs = all.map((f) => f[k]).filter((v): v is number => typeof v === 'number');
    out[k] = vs.length ? vs.reduce((s, v) => s + v, 0) / vs.length : null;
  }
  return out;
}
