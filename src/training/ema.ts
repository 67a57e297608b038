// An exponential moving average of the actor's weights (DeepSpeed-Chat's
// --enable_ema: ema = beta * ema + (1 - beta) * weights after every PPO
// update), kept over the merged weights so that it saves as a plain Hugging
// Face model even when the actor trains LoRA adapters.
import type { Params } from '../models/families/layout.js';
import { mergedParams } from '../models/lora.js';
import type { Transformer } from '../models/transformer.js';
import { movingAverageBuffer } from '../tensor/index.js';

export class Ema {
  readonly params: Params = new Map();

  constructor(model: Transformer, readonly beta: number) {
    if (!(beta > 0 && beta < 1)) throw new Error(`ema: beta must be in (0, 1), got ${beta}`);
    for (const [name, p] of mergedParams(model)) this.params.set(name, { shape: p.shape, data: Float32Array.from(p.data) });
  }

  update(model: Transformer): void {
    for (const [name, p] of mergedParams(model)) {
      movingAverageBuffer(this.params.get(name)!.data, p.data, this.beta);
    }
  }
}
