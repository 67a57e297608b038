// What every step driver shares: its hooks (where lines and metrics go, how
// to stop early), the learning-rate schedule the coordinator owns, and the
// wire tensors built from the data layer's batches.
import type { RoleName } from '../config/defaults.js';
import type { Roles, WireTensor } from '../runtime/index.js';
import { wireTensor } from '../runtime/index.js';
import { lrAt, type ScheduleName } from '../tensor/optim/schedule.js';
import type { MetricsSink } from './metrics.js';

export interface DriverHooks {
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Where step figures go (default: nowhere). */
  metrics?: MetricsSink;
  /** Asked before each step; true ends the phase early (after saving what it has). */
  shouldStop?: () => boolean;
  /** Show a progress bar on stderr (default true). */
  progress?: boolean;
}

export interface TrainingSettings {
  lr: number;
  schedule: ScheduleName;
  warmup: number;
}

/**
 * The learning rate of optimizer step `step` (0-based) of a phase of `total`
 * steps, as transformers' get_scheduler with warmup. The coordinator sends it
 * with every train call, so a resumed run continues the same schedule.
 */
export function lrFor(t: TrainingSettings, step: number, total: number): number {
  return lrAt(step, { lr: t.lr, schedule: t.schedule, warmup: t.warmup, total: Math.max(total, t.warmup, 1) });
}

/** Rows each replica trains per forward/backward when `rows` are spread over the group. */
export function perReplica(roles: Roles, role: RoleName, rows: number): number {
  return Math.max(1, Math.ceil(rows / roles.group(role).size));
}

export function i32(shape: number[], data: Int32Array): WireTensor {
  return wireTensor('i32', shape, data);
}

export function f32(shape: number[], data: Float32Array): WireTensor {
  return wireTensor('f32', shape, data);
}

export function toF32(a: Int32Array): Float32Array {
  return Float32Array.from(a);
}

/** A number from a role's metrics, or null when the role did not report it. */
export function figure(metrics: Record<string, number>, key: string): number | null {
  const v = metrics[key];
  return typeof v === 'number' ? v : null;
}

/** Token-weighted mean of a figure over replies. */
export function weightedMean(parts: { value: number | null; weight: number }[]): number | null {
  let sum = 0, w = 0;
  for (const p of parts) {
    if (p.value === null || !(p.weight > 0)) continue;
    sum += p.value * p.weight;
    w += p.weight;
  }
  return w > 0 ? sum / w : null;
}
