// AdamW as torch.optim.AdamW: decoupled weight decay, bias-corrected moments,
// parameter groups with their own lr and weight decay (no decay on biases and
// norm weights), a per-parameter step count (a parameter without a gradient
// is skipped and its step does not advance), and a state dict of plain typed
// arrays that a trainer can write to disk.
import { native } from '../../native.js';
import { fmtShape, type Tensor } from '../tensor.js';

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface ParamGroup extends AdamWOptions {
  params: Tensor[];
}

/** A group as the optimizer holds it: `lr` is the current rate (a schedule sets it), `initialLr` its base. */
export interface Group {
  params: Tensor[];
  lr: number;
  initialLr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

interface ParamState {
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export interface AdamWStateDict {
  groups: { lr: number; initialLr: number; betas: [number, number]; eps: number; weightDecay: number; size: number }[];
  /** One entry per parameter, in group order; null where the parameter never stepped. */
  state: ({ step: number; m: Float32Array; v: Float32Array } | null)[];
}

/** torch.optim.AdamW's defaults. */
export const adamwDefaults: Required<AdamWOptions> = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 };

function checkOptions(where: string, o: AdamWOptions): void {
  const bad = (name: string, v: unknown) => {
    throw new Error(`AdamW: ${where}${name} is invalid: ${JSON.stringify(v)}`);
  };
  if (o.lr !== undefined && !(o.lr >= 0)) bad('lr', o.lr);
  if (o.eps !== undefined && !(o.eps >= 0)) bad('eps', o.eps);
  if (o.weightDecay !== undefined && !(o.weightDecay >= 0)) bad('weightDecay', o.weightDecay);
  if (o.betas !== undefined && !(o.betas.length === 2 && o.betas.every((b) => b >= 0 && b < 1))) bad('betas', o.betas);
}

export class AdamW {
  readonly groups: Group[];
  private state = new Map<Tensor, ParamState>();

  constructor(params: Tensor[] | ParamGroup[], options: AdamWOptions = {}) {
    checkOptions('', options);
    const d = { ...adamwDefaults, ...options };
    const groups: ParamGroup[] = params.length > 0 && (params[0] as ParamGroup).params !== undefined
      ? (params as ParamGroup[])
      : [{ params: params as Tensor[] }];
    const seen = new Set<Tensor>();
    this.groups = groups.map((g, i) => {
      checkOptions(`group ${i} `, g);
      for (const p of g.params) {
        if (!p.requiresGrad || p.dtype !== 'f32') throw new Error(`AdamW: group ${i} holds a tensor ${fmtShape(p.shape)} that is not a parameter`);
        if (seen.has(p)) throw new Error(`AdamW: a parameter ${fmtShape(p.shape)} appears in more than one group`);
        seen.add(p);
      }
      const lr = g.lr ?? d.lr;
      return { params: g.params.slice(), lr, initialLr: lr, betas: g.betas ?? d.betas, eps: g.eps ?? d.eps, weightDecay: g.weightDecay ?? d.weightDecay };
    });
  }

  /** Every parameter, in group order. */
  params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    for (const g of this.groups) {
      for (const p of g.params) {
        if (p.grad === null) continue;
        let st = this.state.get(p);
        if (st === undefined) {
          st = { step: 0, m: new Float32Array(p.size), v: new Float32Array(p.size) };
          this.state.set(p, st);
        }
        st.step++;
        native.adamw(p.f32, p.grad.f32, st.m, st.v, g.lr, g.betas[0], g.betas[1], g.eps, g.weightDecay, st.step);
      }
    }
  }

  zeroGrad(): void {
    for (const p of this.params()) {
      if (p.grad !== null) {
        p.grad.dispose();
        p.grad = null;
      }
    }
  }

  /** Copies of the moments and step counts (restorable with loadStateDict on the same parameter layout). */
  stateDict(): AdamWStateDict {
    return {
      groups: this.groups.map((g) => ({ lr: g.lr, initialLr: g.initialLr, betas: [g.betas[0], g.betas[1]], eps: g.eps, weightDecay: g.weightDecay, size: g.params.length })),
      state: this.params().map((p) => {
        const st = this.state.get(p);
        return st === undefined ? null : { step: st.step, m: st.m.slice(), v: st.v.slice() };
      }),
    };
  }

  loadStateDict(sd: AdamWStateDict): void {
    if (!sd || !Array.isArray(sd.groups) || !Array.isArray(sd.state)) throw new Error('AdamW.loadStateDict: expected { groups, state }');
    if (sd.groups.length !== this.groups.length) {
      throw new Error(`AdamW.loadStateDict: ${sd.groups.length} groups saved, optimizer has ${this.groups.length}`);
    }
    sd.groups.forEach((sg, i) => {
      if (sg.size !== this.groups[i].params.length) {
        throw new Error(`AdamW.loadStateDict: group ${i} saved ${sg.size} parameters, optimizer has ${this.groups[i].params.length}`);
      }
    });
    const params = this.params();
    if (sd.state.length !== params.length) throw new Error(`AdamW.loadStateDict: ${sd.state.length} states for ${params.length} parameters`);
    const next = new Map<Tensor, ParamState>();
    params.forEach((p, i) => {
      const s = sd.state[i];
      if (s === null) return;
      if (!(s.m instanceof Float32Array) || !(s.v instanceof Float32Array) || s.m.length !== p.size || s.v.length !== p.size
        || !Number.isInteger(s.step) || s.step < 0) {
        throw new Error(`AdamW.loadStateDict: state ${i} does not fit parameter ${fmtShape(p.shape)}`);
      }
      next.set(p, { step: s.step, m: s.m.slice(), v: s.v.slice() });
    });
    sd.groups.forEach((sg, i) => {
      const g = this.groups[i];
      g.lr = sg.lr;
      g.initialLr = sg.initialLr;
      g.betas = [sg.betas[0], sg.betas[1]];
      g.eps = sg.eps;
      g.weightDecay = sg.weightDecay;
    });
    this.state = next;
  }
}
