// What a role process is told when it starts. The node agent writes these
// environment variables from the placement plan; the role server (or a role in
// any language) reads them once at start-up. They are the only channel from
// the plan into a role, so config keeps flowing one way.
export interface CurveClientKeys {
  /** The coordinator's public key (Z85). */
  serverKey: string;
  publicKey: string;
  secretKey: string;
}

export interface RoleStartup {
  /** The coordinator's ROUTER, e.g. ipc:///tmp/q-1/c.sock or tcp://10.0.0.1:5555. */
  endpoint: string;
  role: string;
  replica: number;
  /** Per-spawn secret the hello must carry: it ties a connection to this very process. */
  token: string;
  /** Kernel threads the role should use (the role calls native.setThreads with it). */
  threads: number;
  /** The devices of the placement, e.g. ['cpu:0-1'] or ['cuda:0']. */
  devices: string[];
  /** The role's own arguments from the plan (model path, learning rate, ...). */
  args: Record<string, unknown>;
  heartbeatMs: number;
  /** The role exits when it has heard nothing from the coordinator for this long. */
  coordinatorTimeoutMs: number;
  /** The role exits at once when its parent (the node agent) is gone. 0: no parent check. */
  parentPid: number;
  /** Present for tcp endpoints: the role connects with CURVE. */
  curve?: CurveClientKeys;
}

export const ENV = {
  endpoint: 'QUARTET_ENDPOINT',
  role: 'QUARTET_ROLE',
  replica: 'QUARTET_REPLICA',
  token: 'QUARTET_TOKEN',
  threads: 'QUARTET_THREADS',
  devices: 'QUARTET_DEVICES',
  args: 'QUARTET_ARGS',
  heartbeatMs: 'QUARTET_HEARTBEAT_MS',
  coordinatorTimeoutMs: 'QUARTET_COORDINATOR_TIMEOUT_MS',
  parentPid: 'QUARTET_PARENT_PID',
  curveServerKey: 'QUARTET_CURVE_SERVER_KEY',
  curvePublicKey: 'QUARTET_CURVE_PUBLIC_KEY',
  curveSecretKey: 'QUARTET_CURVE_SECRET_KEY',
} as const;

export function startupEnv(s: RoleStartup): Record<string, string> {
  const env: Record<string, string> = {
    [ENV.endpoint]: s.endpoint,
    [ENV.role]: s.role,
    [ENV.replica]: String(s.replica),
    [ENV.token]: s.token,
    [ENV.threads]: String(s.threads),
    [ENV.devices]: s.devices.join(' '),
    [ENV.args]: JSON.stringify(s.args),
    [ENV.heartbeatMs]: String(s.heartbeatMs),
    [ENV.coordinatorTimeoutMs]: String(s.coordinatorTimeoutMs),
    [ENV.parentPid]: String(s.parentPid),
  };
  if (s.curve) {
    env[ENV.curveServerKey] = s.curve.serverKey;
    env[ENV.curvePublicKey] = s.curve.publicKey;
    env[ENV.curveSecretKey] = s.curve.secretKey;
  }
  return env;
}

/** Reads the start-up variables; throws naming the variable that is missing or malformed. */
export function readStartup(env: NodeJS.ProcessEnv): RoleStartup {
  const need = (k: string) => {
    const v = env[k];
    if (v === undefined || v === '') throw new Error(`role start-up: ${k} is not set (roles are started by the quartet node agent)`);
    return v;
  };
  const int = (k: string) => {
    const v = Number(need(k));
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`role start-up: ${k} must be a non-negative integer, got '${env[k]}'`);
    return v;
  };
  const endpoint = need(ENV.endpoint);
  let args: unknown;
  try {
    args = JSON.parse(need(ENV.args));
  } catch (e) {
    throw new Error(`role start-up: ${ENV.args} is not JSON: ${(e as Error).message}`);
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new Error(`role start-up: ${ENV.args} must be a JSON object`);
  const s: RoleStartup = {
    endpoint,
    role: need(ENV.role),
    replica: int(ENV.replica),
    token: need(ENV.token),
    threads: int(ENV.threads),
    devices: (env[ENV.devices] ?? '').split(' ').filter(Boolean),
    args: args as Record<string, unknown>,
    heartbeatMs: int(ENV.heartbeatMs),
    coordinatorTimeoutMs: int(ENV.coordinatorTimeoutMs),
    parentPid: int(ENV.parentPid),
  };
  if (env[ENV.curveServerKey]) {
    s.curve = { serverKey: need(ENV.curveServerKey), publicKey: need(ENV.curvePublicKey), secretKey: need(ENV.curveSecretKey) };
  }
  return s;
}
