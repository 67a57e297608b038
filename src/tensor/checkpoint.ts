// Gradient checkpointing (activation recomputation, torch.utils.checkpoint in
// its reentrant form): the forward of fn runs without recording, so none of its
// intermediates outlive it; only its inputs are kept. One tape node stands for
// the whole of fn; its backward runs fn again with recording on, over detached
// copies of the inputs, back-propagates the incoming gradient through that
// fresh subgraph (which accumulates into the parameters fn closes over, as any
// backward does), hands the inputs' gradients to the outer pass and frees the
// recomputed intermediates. Memory of a stack of L blocks drops from L blocks'
// activations to L block inputs plus one block's activations, for one extra
// forward per block.
//
// Random ops (dropout) must draw the same numbers in the recompute: the caller
// names the generators fn uses, their states are saved before the forward,
// restored for the recompute and put back afterwards, so the stream seen by
// everything else is as if no recompute had happened.
import { tidy, trackNode } from './scope.js';
import { Node, backward, enableGrad, isGradEnabled, noGrad } from './tape/autograd.js';
import type { Rng, RngState } from './rng.js';
import type { Tensor } from './tensor.js';

export interface CheckpointOptions {
  /** Generators fn draws from (dropout); replayed exactly in the recompute. */
  rngs?: Rng[];
}

interface Attrs {
  fn: (...xs: Tensor[]) => Tensor;
  rngs: Rng[];
  states: RngState[];
}

/**
 * Runs fn(...inputs) keeping only the inputs for the backward; fn is run again when the gradient
 * is needed. fn must be deterministic given its inputs and the states of opts.rngs, and must not
 * dispose its inputs. What else it reads must stay alive until the backward: parameters (leaves)
 * are fine; tensors that only some tidy keeps alive (masks, position ids) belong in `inputs`, where
 * the node holds them. A tensor computed with gradients outside fn must be passed in `inputs` too:
 * if fn only closes over it, the recompute's backward would run into the outer graph (the outer
 * backward then fails with "already freed").
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: CheckpointOptions = {}): Tensor {
  inputs.forEach((x, i) => {
    if (x.disposed) throw new Error(`checkpoint: input ${i} ${x} was disposed`);
  });
  const rngs = opts.rngs ?? [];
  const states = rngs.map((r) => r.getState());
  const out = tidy(() => noGrad(() => fn(...inputs)));
  if (!isGradEnabled()) return out;
  // Under noGrad a tensor fn makes has no gradient flag; one with it was made elsewhere.
  if (inputs.includes(out) || out.requiresGrad) {
    throw new Error(`checkpoint: fn returned a tensor it did not make (${out}: an input, a parameter or a tensor from outside); there is nothing to recompute`);
  }
  if (out.dtype !== 'f32') throw new Error(`checkpoint: fn returned an ${out.dtype} tensor; only f32 results carry gradients`);
  // The node is recorded even when no input wants a gradient: the parameters fn closes over are
  // only known by running it with recording on, which is what checkpointing avoids. Its rule
  // then finds out in the recompute (and gives nothing when nothing there wants a gradient).
  const saved = inputs.map((x) => x.view(x.shape, 0, x.size, false));
  const node = new Node<Attrs>('checkpoint', recompute, inputs, inputs.map((x) => x.requiresGrad), saved, { fn, rngs, states }, 1);
  out.requiresGrad = true;
  out.node = node;
  out.outIndex = 0;
  trackNode(node);
  return out;
}

function recompute(node: Node<Attrs>, [g]: (Tensor | null)[]): (Tensor | null)[] {
  const none = node.inputs.map(() => null);
  if (g === null) return none;
  const { fn, rngs, states } = node.attrs;
  const after = rngs.map((r) => r.getState());
  rngs.forEach((r, i) => r.setState(states[i]));
  try {
    // tidy frees every tensor and releases every node of the recompute; the inputs' gradients
    // are taken off the detached copies first (disposing a tensor disposes its grad).
    return enableGrad(() => tidy(() => {
      const xs = node.saved.map((s, i) => {
        const d = s.detach();
        d.requiresGrad = node.needs[i];
        return d;
      });
      const y = fn(...xs);
      if (y.requiresGrad) backward(y, g);
      return xs.map((d) => {
        const gx = d.grad;
        d.grad = null;
        return gx;
      });
    }));
  } finally {
    rngs.forEach((r, i) => r.setState(after[i]));
  }
}
