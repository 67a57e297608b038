// Where the demo's roles run when a step trains one role alone.
import { availableParallelism } from 'node:os';
import type { Config } from '../config/defaults.js';

/** Places a role that runs alone on every core of the machine, one replica. */
export function useAllCores(cfg: Config, role: 'actor' | 'reward'): void {
  const cores = availableParallelism();
  cfg[role].devices = [cores > 1 ? `cpu:0-${cores - 1}` : 'cpu:0'];
  cfg[role].threads = cores;
  cfg[role].replicas = 1;
}
