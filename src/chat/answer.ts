// Turning generated ids into an answer's text: decoded without the EOS, cut
// at the first stop marker (the next "Human:" turn the model starts writing,
// or the end-of-conversation text when the tokenizer splits it into pieces),
// with the space after "Assistant:" removed. StreamDecoder does the same while
// the tokens arrive, printing only text that can no longer change.
import type { QTokenizer } from '../models/tokenizer.js';

/** The stop markers of a prompt template and end-of-conversation token: 'Human: {prompt} Assistant:' -> ['Human:', eot]. */
export function stopMarkers(template: string, eot: string): string[] {
  const turn = template.slice(0, template.indexOf('{prompt}')).trim();
  return [turn, eot].filter((m) => m.length > 0);
}

/** Decodes ids; @huggingface/tokenizers throws on an empty list, which is an empty answer here. */
export function decodeIds(tok: QTokenizer, ids: readonly number[]): string {
  return ids.length === 0 ? '' : tok.decode(ids, { skipSpecialTokens: true });
}

/** Where the first marker starts in text, or -1. */
function firstMarker(text: string, markers: readonly string[]): number {
  let at = -1;
  for (const m of markers) {
    const i = text.indexOf(m);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** The answer in a decoded continuation: up to the first marker, without the leading space, trailing space trimmed. */
export function answerText(text: string, markers: readonly string[]): { text: string; stopped: boolean } {
  const at = firstMarker(text, markers);
  const kept = at < 0 ? text : text.slice(0, at);
  return { text: kept.trim(), stopped: at >= 0 };
}

/** Decodes tokens as they arrive and releases text once no marker and no unfinished character can change it. */
export class StreamDecoder {
  private readonly ids: number[] = [];
  private released = 0;
  private stopped = false;

  constructor(private readonly tok: QTokenizer, private readonly markers: readonly string[], private readonly eosIds: ReadonlySet<number>) {}

  /** Adds a generated token; returns the newly final text and whether the answer has ended (EOS or a marker). */
  push(id: number): { piece: string; done: boolean } {
    if (this.stopped) throw new Error('stream decoder: a token after the end of the answer');
    if (this.eosIds.has(id)) {
      this.stopped = true;
      return { piece: this.rest(), done: true };
    }
    this.ids.push(id);
    const text = this.text();
    if (firstMarker(text, this.markers) >= 0) {
      this.stopped = true;
      return { piece: this.rest(), done: true };
    }
    const safe = text.length - this.heldBack(text);
    const piece = safe > this.released ? text.slice(this.released, safe) : '';
    this.released = Math.max(this.released, safe);
    return { piece, done: false };
  }

  /** The text not yet released (call when generation ends for any reason). */
  rest(): string {
    const full = this.answer();
    const piece = full.slice(this.released);
    this.released = full.length;
    return piece;
  }

  /** The whole answer so far, as answerText gives it. */
  answer(): string {
    return answerText(this.text(), this.markers).text;
  }

  private text(): string {
    // Leading space is dropped now so released text and the final answer line up.
    return decodeIds(this.tok, this.ids).replace(/^\s+/, '');
  }

  /** Characters at the end that may still change: an unfinished UTF-8 sequence, trailing space, or the start of a marker. */
  private heldBack(text: string): number {
    let body = text.replace(/[\s\uFFFD]+$/, '');
    let longest = 0;
    for (const marker of this.markers) {
      for (let k = Math.min(marker.length - 1, body.length); k > longest; k--) {
        if (body.endsWith(marker.slice(0, k))) {
          longest = k;
          break;
        }
      }
    }
    body = body.slice(0, body.length - longest).replace(/\s+$/, '');
    return text.length - body.length;
  }
}
