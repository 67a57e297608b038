// Deterministic freeing: tidy(fn) disposes every tensor made inside fn that it
// does not return, and releases the buffers that autograd nodes saved for a
// backward that can no longer run. A training loop wrapped in tidy therefore
// hands the same buffers back to the allocator every step.
import type { Tensor } from './tensor.js';
import type { Node } from './tape/autograd.js';

class Scope {
  tensors: Tensor[] = [];
  nodes: Node[] = [];
}

// null on the stack: tensors made now belong to nobody (the autograd engine's
// own temporaries, optimizer state); whoever made them frees them.
const stack: (Scope | null)[] = [];

export function trackTensor(t: Tensor): void {
  const s = stack.length > 0 ? stack[stack.length - 1] : null;
  if (s !== null) s.tensors.push(t);
}

export function trackNode(n: Node): void {
  const s = stack.length > 0 ? stack[stack.length - 1] : null;
  if (s !== null) s.nodes.push(n);
}

/** Runs fn with nothing it makes tracked by any scope. */
export function untracked<T>(fn: () => T): T {
  stack.push(null);
  try {
    return fn();
  } finally {
    stack.pop();
  }
}

/**
 * Runs fn and disposes every tensor it made that is not part of its result
 * (a tensor, or tensors inside arrays and plain objects) and not a parameter
 * or kept. Autograd nodes that the result's graph still needs survive (so
 * `tidy(() => forward()).backward()` works); the others release what they
 * saved. Survivors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    stack.pop();
    endScope(scope, new Set(), null);
    throw err;
  }
  stack.pop();
  if (result instanceof Promise) {
    endScope(scope, new Set(), null);
    throw new Error('tidy: fn returned a Promise; tidy only works with synchronous functions');
  }
  const parent = stack.length > 0 ? stack[stack.length - 1] : null;
  endScope(scope, collectTensors(result), parent);
  return result;
}

/** Exempts t from every enclosing tidy (it lives until disposed by hand). */
export function keep<T extends Tensor>(t: T): T {
  t.kept = true;
  return t;
}

function endScope(scope: Scope, results: Set<Tensor>, parent: Scope | null): void {
  for (const t of scope.tensors) {
    if (results.has(t)) {
      if (parent !== null) parent.tensors.push(t);
    } else if (!t.isParam && !t.kept) {
      t.dispose();
    }
  }
  if (scope.nodes.length === 0) return;
  const needed = reachableNodes(results);
  for (const n of scope.nodes) {
    if (needed.has(n)) {
      if (parent !== null) parent.nodes.push(n);
    } else {
      n.release();
    }
  }
}

function reachableNodes(roots: Set<Tensor>): Set<Node> {
  const seen = new Set<Node>();
  const todo: Node[] = [];
  for (const t of roots) if (t.node !== null) todo.push(t.node);
  while (todo.length > 0) {
    const n = todo.pop()!;
    if (seen.has(n) || n.released) continue;
    seen.add(n);
    for (const inp of n.inputs) if (inp !== null && inp.node !== null) todo.push(inp.node);
  }
  return seen;
}

function collectTensors(value: unknown, out = new Set<Tensor>(), depth = 0): Set<Tensor> {
  if (value === null || typeof value !== 'object' || depth > 8) return out;
  if (isTensor(value)) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const values = value instanceof Map ? value.values() : Object.values(value);
    for (const v of values) collectTensors(v, out, depth + 1);
  }
  return out;
}

function isTensor(v: object): v is Tensor {
  return (v as { isTensor?: unknown }).isTensor === true;
}
