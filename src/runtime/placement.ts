// The placement plan: roles -> replicas -> node -> devices, checked once.
// The config layer maps the user's config into a PlanInput; every error
// names the role and field to change.
import { readFileSync } from 'node:fs';

export interface RoleInput {
  replicas: number;
  /**
   * Devices per replica (one entry each) or shared (a single entry). An entry
   * is 'cpu:0', 'cpu:0-1', 'cpu:0,2', 'cuda:1', 'cpu' (any core), or kinds
   * joined with '+', e.g. 'cuda:0+cpu:2-3'.
   */
  devices: string[];
  /**
   * The machine: 'local' (default) or the --name of a node that joined; a
   * list gives one per replica, so that a group can span machines.
   */
  node?: string | string[];
  /** A custom process in any language that speaks docs/protocol.md. */
  command?: string[];
  /** A JavaScript role file under dist/, e.g. 'actors/actor.js'. */
  module?: string;
  /** Working directory of the process on the coordinator's machine (default: the coordinator's); roles on other machines ignore it. */
  cwd?: string;
  /** The role's own start-up arguments. */
  args?: Record<string, unknown>;
  restart?: { maxRestarts: number };
}

export type PlanInput = Record<string, RoleInput>;

export interface ReplicaPlan {
  role: string;
  replica: number;
  node: string;
  /** The devices entry this replica got, split on '+'. */
  devices: string[];
  /** CPU cores for the affinity mask; null: not pinned. */
  cpus: number[] | null;
  /** CUDA devices for CUDA_VISIBLE_DEVICES; null: none. */
  cuda: number[] | null;
  threads: number;
  /** Exactly one of module and command. */
  module?: string;
  command?: string[];
  cwd?: string;
  args: Record<string, unknown>;
  maxRestarts: number;
}

export interface Placement {
  /** Role name -> its replicas in order. */
  roles: Record<string, ReplicaPlan[]>;
}

export const LOCAL_NODE = 'local';

const ROLE_KEYS = new Set(['replicas', 'devices', 'node', 'command', 'module', 'cwd', 'args', 'restart']);
const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/** Parses '0-2,5' into [0, 1, 2, 5]; throws naming `where`. */
export function parseIndexList(where: string, list: string): number[] {
  const out = new Set<number>();
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`${where}: '${list}' is not a list like 0, 0-3 or 0,2`);
    const a = +m[1], b = m[2] === undefined ? a : +m[2];
    if (b < a) throw new Error(`${where}: range '${part}' runs backwards`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** The CPUs this process may run on (its own affinity), from /proc. */
export function allowedCpus(): number[] {
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('placement: /proc/self/status has no Cpus_allowed_list');
  return parseIndexList('/proc/self/status Cpus_allowed_list', m[1]);
}

export function parseDevices(where: string, entry: string): { devices: string[]; cpus: number[] | null; cuda: number[] | null } {
  let cpus: number[] | null = null;
  let cuda: number[] | null = null;
  const devices = entry.split('+').map((d) => d.trim());
  for (const d of devices) {
    const m = /^(cpu|cuda)(?::(.+))?$/.exec(d);
    if (!m) throw new Error(`${where}: device '${d}' must look like cpu:0-1, cpu, or cuda:0`);
    if (m[1] === 'cpu') {
      if (cpus) throw new Error(`${where}: '${entry}' names cpu twice`);
      cpus = m[2] === undefined ? [] : parseIndexList(where, m[2]);
    } else {
      if (cuda) throw new Error(`${where}: '${entry}' names cuda twice`);
      if (m[2] === undefined) throw new Error(`${where}: '${d}' needs a device index, e.g. cuda:0`);
      cuda = parseIndexList(where, m[2]);
    }
  }
  // 'cpu' alone means any core: no mask.
  return { devices, cpus: cpus && cpus.length ? cpus : null, cuda };
}

/**
 * Checks a PlanInput and resolves every replica. `localCpus` are the cores
 * the local node may use (default: this process's affinity); cores of remote
 * nodes are checked by their agent when it spawns.
 */
export function planPlacement(input: PlanInput, localCpus: number[] = allowedCpus()): Placement {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('placement: the plan must be an object of roles');
  const roles: Record<string, ReplicaPlan[]> = {};
  for (const [role, r] of Object.entries(input)) {
    const where = `placement: role '${role}'`;
    if (!NAME.test(role)) throw new Error(`${where}: role names are lower-case letters, digits, '-' and '_' (at most 32)`);
    if (r === null || typeof r !== 'object') throw new Error(`${where}: must be an object`);
    for (const k of Object.keys(r)) if (!ROLE_KEYS.has(k)) throw new Error(`${where}: unknown field '${k}' (known: ${[...ROLE_KEYS].join(', ')})`);
    if (!Number.isSafeInteger(r.replicas) || r.replicas < 1) throw new Error(`${where}: 'replicas' must be an integer >= 1, got ${JSON.stringify(r.replicas)}`);
    if (!Array.isArray(r.devices) || !r.devices.every((d) => typeof d === 'string'))
      throw new Error(`${where}: 'devices' must be a list of strings like ['cpu:0-1']`);
    if (r.devices.length !== 1 && r.devices.length !== r.replicas)
      throw new Error(`${where}: 'devices' needs one entry shared by all replicas or one per replica (${r.replicas}), got ${r.devices.length}`);
    if ((r.module === undefined) === (r.command === undefined)) throw new Error(`${where}: give exactly one of 'module' and 'command'`);
    if (r.module !== undefined && (typeof r.module !== 'string' || !r.module.endsWith('.js')))
      throw new Error(`${where}: 'module' must be a compiled role file under dist/, e.g. 'actors/actor.js'`);
    if (r.command !== undefined && (!Array.isArray(r.command) || r.command.length === 0 || !r.command.every((c) => typeof c === 'string')))
      throw new Error(`${where}: 'command' must be a non-empty list of strings`);
    if (r.args !== undefined && (r.args === null || typeof r.args !== 'object' || Array.isArray(r.args))) throw new Error(`${where}: 'args' must be an object`);
    const maxRestarts = r.restart?.maxRestarts ?? 0;
    if (!Number.isSafeInteger(maxRestarts) || maxRestarts < 0) throw new Error(`${where}: 'restart.maxRestarts' must be an integer >= 0`);
    const nodes = Array.isArray(r.node) ? r.node : [r.node ?? LOCAL_NODE];
    if (nodes.length === 0 || !nodes.every((n) => typeof n === 'string' && NAME.test(n)))
      throw new Error(`${where}: 'node' must be a node name like 'local' or 'gpu-1', or a list of them (one per replica)`);
    if (nodes.length !== 1 && nodes.length !== r.replicas)
      throw new Error(`${where}: 'node' needs one name shared by all replicas or one per replica (${r.replicas}), got ${nodes.length}`);
    roles[role] = [];
    for (let i = 0; i < r.replicas; i++) {
      const node = nodes.length === 1 ? nodes[0] : nodes[i];
      const entry = r.devices.length === 1 ? r.devices[0] : r.devices[i];
      const dev = parseDevices(`${where} replica ${i}`, entry);
      if (node === LOCAL_NODE && dev.cpus) {
        const bad = dev.cpus.filter((c) => !localCpus.includes(c));
        if (bad.length) throw new Error(`${where} replica ${i}: cpu ${bad.join(',')} is not available here (allowed: ${localCpus.join(',')})`);
      }
      roles[role].push({
        role, replica: i, node, devices: dev.devices, cpus: dev.cpus, cuda: dev.cuda,
        threads: dev.cpus ? dev.cpus.length : dev.cuda ? 1 : localCpus.length,
        module: r.module, command: r.command, ...(r.cwd !== undefined && { cwd: r.cwd }), args: r.args ?? {}, maxRestarts,
      });
    }
  }
  if (Object.keys(roles).length === 0) throw new Error('placement: the plan has no roles');
  return { roles };
}
