// The autograd tape. An op that has an input wanting gradients records a Node:
// its inputs, the tensors its backward rule needs (held by refcount, so that
// disposing an input does not break the backward), and small attributes.
// Backward rules live in one table keyed by op name (defineRule); backward()
// walks the recorded graph from the root in reverse topological order, sums
// gradients that fan in, accumulates into leaves' .grad, and frees each
// node's saved tensors as soon as the node has run.
import { native } from '../../native.js';
import { untracked, trackNode } from '../scope.js';
import { empty, fmtShape, sameShape, type Tensor } from '../tensor.js';

/** Given the gradients of a node's outputs (null where none arrived), returns one gradient per
 *  input (null where not needed: check node.needs). Returned tensors are owned by the engine:
 *  fresh buffers, or views made with view() — never an output gradient itself. */
export type BackwardRule<A = any> = (node: Node<A>, gradOuts: (Tensor | null)[]) => (Tensor | null)[];

const rules = new Map<string, BackwardRule>();

/** Registers the backward rule of an op (once per op name). */
export function defineRule<A>(op: string, rule: BackwardRule<A>): void {
  if (rules.has(op)) throw new Error(`defineRule: op ${op} already has a backward rule`);
  rules.set(op, rule as BackwardRule);
}

/** Names of every op with a backward rule (the gradient tests check that each has a case). */
export function ruleNames(): string[] {
  return [...rules.keys()];
}

export class Node<A = any> {
  released = false;
  /** Gradients of the outputs gathered during a backward pass. */
  gradOuts: (Tensor | null)[];
  /** Marks of the topological sort (the pass that last visited this node). */
  mark = 0;

  constructor(
    readonly op: string,
    readonly rule: BackwardRule<A>,
    /** The inputs, in the op's order (null for non-tensor arguments). */
    readonly inputs: (Tensor | null)[],
    /** Which inputs want a gradient. */
    readonly needs: boolean[],
    /** Tensors kept for the backward: views of inputs/outputs, and the op's own buffers. */
    readonly saved: Tensor[],
    readonly attrs: A,
    nOutputs: number,
  ) {
    this.gradOuts = new Array<Tensor | null>(nOutputs).fill(null);
  }

  /** Frees what the backward would have needed; the node cannot run afterwards. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const t of this.saved) t.dispose();
    this.saved.length = 0;
    this.clearGradOuts();
  }

  clearGradOuts(): void {
    for (let i = 0; i < this.gradOuts.length; i++) {
      this.gradOuts[i]?.dispose();
      this.gradOuts[i] = null;
    }
  }
}

let gradMode = true;

export function isGradEnabled(): boolean {
  return gradMode;
}

/** Runs fn without recording anything (inference, generation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradMode;
  gradMode = false;
  try {
    return fn();
  } finally {
    gradMode = prev;
  }
}

/** Runs fn with recording on, also inside noGrad or a backward rule (checkpoint.ts's recompute). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradMode;
  gradMode = true;
  try {
    return fn();
  } finally {
    gradMode = prev;
  }
}

/**
 * Records op if grad mode is on and an input wants gradients. `save` lists tensors the rule
 * reads (kept alive by refcount); `owned` lists buffers the op made only for its backward
 * (allocated untracked): they go to the node, or are freed now if nothing is recorded.
 * Returns the node, or null.
 */
export function record<A>(op: string, outputs: Tensor | Tensor[], inputs: (Tensor | null)[], save: Tensor[],
  owned: Tensor[], attrs: A): Node<A> | null {
  if (!gradMode) {
    for (const t of owned) t.dispose();
    return null;
  }
  let any = false;
  const needs = new Array<boolean>(inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i];
    needs[i] = t !== null && t.requiresGrad;
    any ||= needs[i];
  }
  if (!any) {
    for (const t of owned) t.dispose();
    return null;
  }
  const rule = rules.get(op);
  if (rule === undefined) throw new Error(`record: op ${op} has no backward rule`);
  const saved: Tensor[] = [];
  for (const t of save) saved.push(t.view(t.shape, 0, t.size, false));
  for (const t of owned) saved.push(t);
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const node = new Node<A>(op, rule, inputs, needs, saved, attrs, outs.length);
  for (let i = 0; i < outs.length; i++) {
    outs[i].requiresGrad = true;
    outs[i].node = node;
    outs[i].outIndex = i;
  }
  trackNode(node);
  return node;
}

export interface BackwardOptions {
  /** Keep the graph's saved tensors so that backward can run through it again. */
  retainGraph?: boolean;
}

let pass = 0;

export function backward(root: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
  if (root.disposed) throw new Error(`backward: tensor ${fmtShape(root.shape)} was disposed`);
  if (!root.requiresGrad) {
    throw new Error(`backward: tensor ${fmtShape(root.shape)} does not require grad (no parameter in its graph, or made under noGrad)`);
  }
  if (grad !== undefined && (!sameShape(grad.shape, root.shape) || grad.dtype !== 'f32')) {
    throw new Error(`backward: grad ${grad.dtype} ${fmtShape(grad.shape)} does not match tensor f32 ${fmtShape(root.shape)}`);
  }
  if (grad === undefined && root.size !== 1) {
    throw new Error(`backward: grad can be omitted only for a one-element tensor, not ${fmtShape(root.shape)}`);
  }
  const retain = opts?.retainGraph === true;
  untracked(() => noGrad(() => {
    let seed: Tensor;
    if (grad !== undefined) {
      seed = grad.view(root.shape);
    } else {
      seed = empty(root.shape);
      seed.f32[0] = 1;
    }
    if (root.node === null) {
      accumulateLeaf(root, seed, 'backward');
      return;
    }
    const order = topoOrder(root.node);
    root.node.gradOuts[root.outIndex] = seed;
    try {
      for (let i = order.length - 1; i >= 0; i--) runNode(order[i], retain);
    } finally {
      // After an error, drop the half-gathered gradients so that nothing leaks.
      for (const n of order) n.clearGradOuts();
    }
  }));
}

function runNode(node: Node, retain: boolean): void {
  const gouts = node.gradOuts;
  let any = false;
  for (const g of gouts) any ||= g !== null;
  if (!any) return;
  if (node.released) {
    throw new Error(`backward: the graph through ${node.op} was already freed (by an earlier backward — pass { retainGraph: true } to run twice — or by the end of the tidy that made it)`);
  }
  const gins = node.rule(node, gouts);
  node.clearGradOuts();
  for (let j = 0; j < gins.length; j++) {
    const g = gins[j];
    if (g === null) continue;
    const inp = node.inputs[j];
    if (inp === null || !node.needs[j]) {
      g.dispose();
      continue;
    }
    if (!sameShape(g.shape, inp.shape)) {
      throw new Error(`backward: rule of ${node.op} gave input ${j} a gradient ${fmtShape(g.shape)} for shape ${fmtShape(inp.shape)}`);
    }
    if (inp.node !== null) {
      const slots = inp.node.gradOuts;
      slots[inp.outIndex] = accumulate(slots[inp.outIndex], g);
    } else {
      accumulateLeaf(inp, g, node.op);
    }
  }
  if (!retain) node.release();
}

function topoOrder(root: Node): Node[] {
  const mark = ++pass;
  const order: Node[] = [];
  const stack: Node[] = [root];
  const next: number[] = [0];
  root.mark = mark;
  while (stack.length > 0) {
    const top = stack.length - 1;
    const n = stack[top];
    const i = next[top];
    if (i < n.inputs.length) {
      next[top] = i + 1;
      const inp = n.inputs[i];
      const child = inp !== null && n.needs[i] ? inp.node : null;
      if (child !== null && child.mark !== mark) {
        child.mark = mark;
        stack.push(child);
        next.push(0);
      }
    } else {
      order.push(n);
      stack.pop();
      next.pop();
    }
  }
  return order;
}

/** The only holder of its storage: safe to add into in place. */
function exclusive(t: Tensor): boolean {
  return t.storage.refs === 1;
}

function accumulate(slot: Tensor | null, g: Tensor): Tensor {
  if (slot === null) return g;
  if (exclusive(slot)) {
    native.axpy(slot.f32, slot.f32, 1, g.f32);
    g.dispose();
    return slot;
  }
  const sum = empty(slot.shape);
  native.add(sum.f32, slot.f32, g.f32);
  slot.dispose();
  g.dispose();
  return sum;
}

function accumulateLeaf(leaf: Tensor, g: Tensor, op: string): void {
  if (leaf.disposed) throw new Error(`backward: ${op} reached a leaf ${fmtShape(leaf.shape)} that was disposed`);
  if (leaf.grad === null) {
    if (exclusive(g)) {
      leaf.grad = g;
    } else {
      const copy = empty(leaf.shape);
      copy.f32.set(g.f32);
      g.dispose();
      leaf.grad = copy;
    }
  } else {
    native.axpy(leaf.grad.f32, leaf.grad.f32, 1, g.f32);
    g.dispose();
  }
}
