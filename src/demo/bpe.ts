// A byte-level BPE trainer in the manner of GPT-2: text is split by GPT-2's
// pre-tokenisation regex, each piece becomes UTF-8 bytes shown as GPT-2's
// printable byte characters, and merges are learned by pair frequency.
//
// Training keeps, for every adjacent pair, its count over the corpus and the
// words it occurs in; a merge rewrites only those words and adjusts the counts
// of the pairs around each rewrite, so a merge costs in proportion to the words
// it touches rather than to the corpus. A max-heap with lazy deletion picks the
// next pair: entries whose count is out of date are re-filed when popped.
//
// Vocabulary layout (as GPT-2): ids 0..255 are the byte characters in GPT-2's
// order, then one id per merge in the order learned, then the special tokens.

/**
 * GPT-2's table from bytes to printable characters: printable Latin-1 bytes
 * map to themselves, the other 68 to U+0100 onwards. Index = byte value.
 */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const table = new Array<string>(256);
  bs.forEach((b, i) => (table[b] = String.fromCharCode(cs[i])));
  return table;
}

/** The byte order of GPT-2's first 256 vocabulary entries (`!` is id 0). */
function gpt2ByteOrder(): number[] {
  const order: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) order.push(b);
  for (let b = 0xa1; b <= 0xac; b++) order.push(b);
  for (let b = 0xae; b <= 0xff; b++) order.push(b);
  for (let b = 0; b < 256; b++) if (!order.includes(b)) order.push(b);
  return order;
}

/**
 * GPT-2's pre-tokenisation pattern, as Hugging Face's ByteLevel pre-tokenizer
 * uses it (`use_regex: true`): contractions, letters, digits and other symbols
 * each with an optional leading space, and runs of whitespace.
 */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits text into GPT-2 pre-tokens (before the byte mapping). */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

export interface BpeOptions {
  /** Total size including the 256 byte tokens and the special tokens. */
  vocabSize: number;
  /** Added as special tokens with the last ids, in this order. */
  specialTokens: string[];
  /** A pair seen fewer times than this is never merged (default 2). */
  minFrequency?: number;
}

export interface TrainedBpe {
  /** Token string -> id, covering bytes, merges and special tokens. */
  vocab: Map<string, number>;
  /** Merges in rank order, as pairs of token strings. */
  merges: [string, string][];
  /** Special tokens with their ids. */
  specialTokens: { content: string; id: number }[];
}

// Max-heap of (count, pair key); larger count first, then smaller key, so the
// merge order does not depend on insertion order.
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i], cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]; this.counts[i] = this.counts[j]; this.counts[j] = c;
    const k = this.keys[i]; this.keys[i] = this.keys[j]; this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (!this.above(i, up)) break;
      this.swap(i, up);
      i = up;
    }
  }

  /** Removes the top entry and returns it as [count, key]. */
  pop(): [number, number] {
    const top: [number, number] = [this.counts[0], this.keys[0]];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < this.keys.length && this.above(l, best)) best = l;
        if (r < this.keys.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/** Counts of each distinct pre-token over all texts. */
export function countPreTokens(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const piece of preTokenize(text)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  }
  return counts;
}

/**
 * Learns a byte-level BPE vocabulary of exactly `vocabSize` tokens from the
 * texts. Deterministic: the same texts and options give the same result.
 */
export function trainBpe(texts: Iterable<string>, opts: BpeOptions): TrainedBpe {
  const minFrequency = opts.minFrequency ?? 2;
  const specials = opts.specialTokens;
  if (new Set(specials).size !== specials.length) throw new Error('trainBpe: specialTokens has duplicates');
  const learnedSize = opts.vocabSize - specials.length; // bytes + merged tokens
  if (!Number.isInteger(opts.vocabSize) || learnedSize < 256) {
    throw new Error(`trainBpe: vocabSize must be an integer >= 256 + ${specials.length} special tokens, got ${opts.vocabSize}`);
  }
  const V = opts.vocabSize; // pair key = a * V + b

  const byteChar = bytesToUnicode();
  const tokenStr: string[] = gpt2ByteOrder().map((b) => byteChar[b]);
  const idOf = new Map<string, number>(tokenStr.map((s, id) => [s, id]));
  const idOfByte = new Int32Array(256);
  gpt2ByteOrder().forEach((b, id) => (idOfByte[b] = id));

  // Distinct pre-tokens, sorted so that word indices (and so everything
  // downstream) do not depend on the order texts were read in.
  const pieceCounts = [...countPreTokens(texts)].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [piece, count] of pieceCounts) {
    words.push([...Buffer.from(piece, 'utf8')].map((b) => idOfByte[b]));
    freq.push(count);
  }

  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (key: number, n: number, w: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + n);
    let set = pairWords.get(key);
    if (!set) pairWords.set(key, (set = new Set()));
    set.add(w);
  };
  words.forEach((word, w) => {
    for (let i = 0; i + 1 < word.length; i++) addPair(word[i] * V + word[i + 1], freq[w], w);
  });
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [string, string][] = [];
  while (tokenStr.length < learnedSize) {
    if (heap.size === 0) break;
    const [count, key] = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      if (current > 0) heap.push(current, key); // out of date: re-file at its true count
      continue;
    }
    if (count < minFrequency) break;
    const a = Math.floor(key / V), b = key % V;
    // Two different pairs can spell the same token ('ab'+'c', 'a'+'bc'): the
    // second merge then reuses its id, and the vocabulary does not grow.
    const joined = tokenStr[a] + tokenStr[b];
    let c = idOf.get(joined);
    if (c === undefined) {
      c = tokenStr.length;
      tokenStr.push(joined);
      idOf.set(joined, c);
    }
    merges.push([tokenStr[a], tokenStr[b]]);

    const changed = new Map<number, number>(); // pair key -> count delta
    const bump = (k: number, n: number): void => {
      changed.set(k, (changed.get(k) ?? 0) + n);
    };
    for (const w of pairWords.get(key)!) {
      const word = words[w];
      const n = freq[w];
      let hit = false;
      const merged: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
          merged.push(c);
          i++;
          hit = true;
        } else {
          merged.push(word[i]);
        }
      }
      if (!hit) continue; // the word lost this pair to an earlier merge
      for (let i = 0; i + 1 < word.length; i++) bump(word[i] * V + word[i + 1], -n);
      for (let i = 0; i + 1 < merged.length; i++) {
        const k = merged[i] * V + merged[i + 1];
        bump(k, n);
        let set = pairWords.get(k);
        if (!set) pairWords.set(k, (set = new Set()));
        set.add(w);
      }
      words[w] = merged;
    }
    pairWords.delete(key);
    for (const [k, delta] of changed) {
      if (delta === 0) continue;
      const next = (pairCount.get(k) ?? 0) + delta;
      if (next > 0) pairCount.set(k, next);
      else pairCount.delete(k);
      if (delta > 0) heap.push(next, k); // decreases are caught when popped
    }
  }
  if (tokenStr.length < learnedSize) {
    throw new Error(
      `trainBpe: the texts allow only ${tokenStr.length - 256} merged tokens with minFrequency ${minFrequency}, ` +
        `but vocabSize ${opts.vocabSize} needs ${learnedSize - 256}; give more text or a smaller vocabSize`,
    );
  }

  const vocab = new Map(idOf);
  const specialTokens = specials.map((content) => {
    if (vocab.has(content)) throw new Error(`trainBpe: special token '${content}' is also a learned token`);
    const id = vocab.size;
    vocab.set(content, id);
    return { content, id };
  });
  return { vocab, merges, specialTokens };
}
