// CURVE keys for tcp across machines. Each run makes a coordinator key pair
// and a node key pair; the node file (coordinator's public key + the node key
// pair) is what another machine needs to join. The coordinator's ROUTER only
// accepts clients whose public key it handed out: a ZAP handler (ZeroMQ's
// authentication hook, one per process) checks each handshake.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as zmq from 'zeromq';
import type { CurveClientKeys } from './startup.js';

export interface KeyPair { publicKey: string; secretKey: string }

export interface RunKeys {
  server: KeyPair;
  /** The key pair every node agent and remote role of this run presents. */
  node: KeyPair;
}

export function generateRunKeys(): RunKeys {
  return { server: zmq.curveKeyPair(), node: zmq.curveKeyPair() };
}

/** Writes the node file (readable by the owner only) and returns its path. */
export function writeNodeKeys(file: string, keys: RunKeys): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const body: CurveClientKeys = { serverKey: keys.server.publicKey, publicKey: keys.node.publicKey, secretKey: keys.node.secretKey };
  writeFileSync(file, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/**
 * The run's keys in `file` (owner-only), made there on first use: every
 * coordinator of one run (one per training step) presents the same ones, so
 * the node agents that joined once can join again.
 */
export function runKeysIn(file: string): RunKeys {
  if (existsSync(file)) {
    let k: RunKeys;
    try {
      k = JSON.parse(readFileSync(file, 'utf8')) as RunKeys;
    } catch (e) {
      throw new Error(`run keys ${file}: ${(e as Error).message}`);
    }
    for (const [pair, field] of [['server', 'publicKey'], ['server', 'secretKey'], ['node', 'publicKey'], ['node', 'secretKey']] as const)
      if (typeof k?.[pair]?.[field] !== 'string' || !Z85.test(k[pair][field])) throw new Error(`run keys ${file}: '${pair}.${field}' must be a 40-character Z85 key`);
    return k;
  }
  const keys = generateRunKeys();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return keys;
}

const Z85 = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;

export function readNodeKeys(file: string): CurveClientKeys {
  let k: Partial<CurveClientKeys>;
  try {
    k = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`node keys ${file}: ${(e as Error).message}`);
  }
  for (const f of ['serverKey', 'publicKey', 'secretKey'] as const)
    if (typeof k[f] !== 'string' || !Z85.test(k[f]!)) throw new Error(`node keys ${file}: field '${f}' must be a 40-character Z85 key`);
  return k as CurveClientKeys;
}

const Z85_CHARS = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Z85 text of a 32-byte key, as ZAP hands keys over in binary. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4) throw new RangeError('z85Encode: length must be a multiple of 4');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v = view.getUint32(i, false);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85_CHARS[v % 85] + chunk;
      v = Math.floor(v / 85);
    }
    out += chunk;
  }
  return out;
}

// ZAP is per ZeroMQ context (zeromq.js uses one per process), so one handler
// serves every coordinator in the process; each coordinator has its own domain.
const domains = new Map<string, { allowed: Set<string>; onDenied: (addr: string) => void }>();
let handler: zmq.Reply | null = null;

export async function allowClients(domain: string, publicKeys: string[], onDenied: (addr: string) => void): Promise<void> {
  domains.set(domain, { allowed: new Set(publicKeys), onDenied });
  if (handler) return;
  handler = new zmq.Reply({ linger: 0 });
  await handler.bind('inproc://zeromq.zap.01');
  void serveZap(handler);
}

export function forgetClients(domain: string): void {
  domains.delete(domain);
  if (domains.size === 0 && handler) {
    handler.close();
    handler = null;
  }
}

async function serveZap(sock: zmq.Reply): Promise<void> {
  try {
    for await (const frames of sock) {
      // ZAP request: version, request id, domain, address, identity, mechanism, credentials...
      const [version, requestId, domain, address, , mechanism, key] = frames;
      const d = domains.get(domain?.toString() ?? '');
      const ok = !!d && mechanism?.toString() === 'CURVE' && key?.length === 32 && d.allowed.has(z85Encode(key));
      if (!ok) d?.onDenied(address?.toString() ?? '?');
      await sock.send([version, requestId, ok ? '200' : '400', ok ? 'OK' : 'client key not allowed', '', '']);
    }
  } catch (e) {
    if (!sock.closed) throw e;
  }
}
