// A piscina worker of the JS reward role: scores a chunk of texts with the
// configured scorer. The scorer loads once per worker thread.
import { createRequire } from 'node:module';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

// `sentiment` is CommonJS without type declarations: this is the part we use.
const Sentiment = createRequire(import.meta.url)('sentiment') as new () => { analyze(text: string): { score: number } };

export interface ScoreTask {
  texts: string[];
  /** 'afinn' (built in: the AFINN-165 sum of word valences, as the `sentiment` package computes it) or a module path. */
  scorer: string;
}

type ScoreFn = (text: string) => number | Promise<number>;
const loaded = new Map<string, Promise<ScoreFn>>();

async function load(scorer: string): Promise<ScoreFn> {
  if (scorer === 'afinn') {
    const s = new Sentiment();
    return (text) => s.analyze(text).score;
  }
  const file = isAbsolute(scorer) ? scorer : resolve(scorer);
  const mod = await import(pathToFileURL(file).href);
  const fn = mod.score ?? mod.default?.score ?? mod.default;
  if (typeof fn !== 'function') throw new Error(`reward scorer ${file}: export a function 'score(text) -> number'`);
  return fn as ScoreFn;
}

export default async function scoreTexts(task: ScoreTask): Promise<number[]> {
  if (!loaded.has(task.scorer)) loaded.set(task.scorer, load(task.scorer));
  const fn = await loaded.get(task.scorer)!;
  const out: number[] = [];
  for (const t of task.texts) {
    const v = Number(await fn(t));
    if (!Number.isFinite(v)) throw new Error(`reward scorer '${task.scorer}' returned ${v} for ${JSON.stringify(t.slice(0, 80))}`);
    out.push(v);
  }
  return out;
}
