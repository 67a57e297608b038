// The per-call settings the coordinator sends in a request's meta
// (docs/roles.md), read and checked by key so a bad one names itself.
export type MetaLike = Record<string, unknown>;

export function metaNumber(op: string, meta: MetaLike, key: string, dflt?: number, min = -Infinity): number {
  const v = meta[key];
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new Error(`${op}: meta.${key} is required`);
    return dflt;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new Error(`${op}: meta.${key} must be a number${min > -Infinity ? ` >= ${min}` : ''}, got ${JSON.stringify(v)}`);
  return v;
}

export function metaBool(op: string, meta: MetaLike, key: string, dflt: boolean): boolean {
  const v = meta[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new Error(`${op}: meta.${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function metaString(op: string, meta: MetaLike, key: string): string {
  const v = meta[key];
  if (typeof v !== 'string' || !v) throw new Error(`${op}: meta.${key} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

/** The optimizer settings of one training call. */
export interface StepSettings {
  lr: number;
  weightDecay: number;
  /** Clip the global gradient norm to this; 0: no clipping. */
  gradClip: number;
  /** Rows per micro-batch; 0: the whole batch at once. */
  microBatch: number;
}

export function stepSettings(op: string, meta: MetaLike): StepSettings {
  const microBatch = metaNumber(op, meta, 'microBatch', 0, 0);
  if (!Number.isInteger(microBatch)) throw new Error(`${op}: meta.microBatch must be an integer, got ${microBatch}`);
  return {
    lr: metaNumber(op, meta, 'lr', undefined, 0),
    weightDecay: metaNumber(op, meta, 'weightDecay', 0, 0),
    gradClip: metaNumber(op, meta, 'gradClip', 0, 0),
    microBatch,
  };
}
