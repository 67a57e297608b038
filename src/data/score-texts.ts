// The texts a reward scorer receives beside the token ids (docs/protocol.md,
// `score`): each row's prompt and answer decoded with the actor's tokenizer.
// Decoding lives here, in the data layer that already reads the tokenizer,
// so that every scorer (in any language) reads the same text and none has to
// decode byte-level BPE itself, and the coordinator loads no model code.
import { QTokenizer } from '../models/tokenizer.js';

/** One `score` request's per-row texts (the meta keys of `reward.score`, src/roles/methods.ts). */
export interface ScoreTexts {
  prompts: string[];
  /** Without pads and without the end token. */
  answers: string[];
  /** The answer ended with the end token (false: it was cut at maxNewTokens). */
  eos: boolean[];
}

export class ScoreDecoder {
  private constructor(private readonly tok: QTokenizer, readonly eosId: number | null) {}

  /** The decoder of a model folder's tokenizer (the actor's: the one that made the ids). */
  static load(tokenizerDir: string): ScoreDecoder {
    const tok = QTokenizer.load(tokenizerDir);
    return new ScoreDecoder(tok, tok.eosId);
  }

  /**
   * Sequences [B, T] with the prompt left-padded to width P: the prompt is a
   * row's real tokens (mask 1) before P, the answer its real tokens from P on.
   * A final end token is taken off the answer and reported in `eos`. Both
   * texts are decoded with special tokens skipped (a prompt's prefix token
   * such as OPT's </s> is not text the user wrote).
   */
  decode(ids: Int32Array, mask: Int32Array, B: number, T: number, P: number): ScoreTexts {
    if (ids.length !== B * T || mask.length !== B * T) throw new Error(`score texts: ids/mask have ${ids.length}/${mask.length} entries, expected ${B}*${T}`);
    const out: ScoreTexts = { prompts: [], answers: [], eos: [] };
    for (let b = 0; b < B; b++) {
      const prompt: number[] = [], answer: number[] = [];
      for (let t = 0; t < T; t++) if (mask[b * T + t]) (t < P ? prompt : answer).push(ids[b * T + t]);
      const ended = answer.length > 0 && answer[answer.length - 1] === this.eosId;
      if (ended) answer.pop();
      // The tokenizer refuses an empty id list; GRPO and RLOO keep rows whose answer is empty.
      out.prompts.push(prompt.length ? this.tok.decode(prompt, { skipSpecialTokens: true }) : '');
      out.answers.push(answer.length ? this.tok.decode(answer, { skipSpecialTokens: true }) : '');
      out.eos.push(ended);
    }
    return out;
  }
}
