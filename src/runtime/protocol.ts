// The wire protocol, version 1 (docs/protocol.md is its description for
// implementers in other languages). A message is a ZeroMQ multipart message
// [header, ...tensor frames]: the header is one msgpack map, each tensor one
// raw little-endian frame in the order of header.tensors.
import { Packr } from 'msgpackr';
import { checkTensor, isDType, numel, tensorBytes, tensorFromFrame, type DType, type Tensors } from './wire.js';

export const PROTOCOL_VERSION = 1;

export const KINDS = ['hello', 'ready', 'req', 'rep', 'err', 'hb', 'log', 'bye'] as const;
export type Kind = (typeof KINDS)[number];

/** Small msgpack-able values only: metadata is not the place for bulk data. */
export type Meta = Record<string, unknown>;
export type Metrics = Record<string, number>;

export interface TensorDesc { name: string; dtype: DType; shape: number[] }

export interface ErrorValue { code: ErrorCode; message: string; retriable: boolean }

/** Every error that crosses the wire carries one of these codes. */
export type ErrorCode =
  | 'bad_message' // the message did not parse or breaks the protocol
  | 'bad_version' // a protocol version this side does not speak
  | 'not_hello' // the peer sent something before its hello was accepted
  | 'unexpected_peer' // a hello that matches no role this coordinator started
  | 'unknown_method'
  | 'method_failed' // the method threw; message carries its error
  | 'timeout' // the caller's deadline passed
  | 'role_died' // the role process exited or hung while the request was in flight
  | 'role_missing' // no such role or replica in this run
  | 'run_failed' // the run stopped (a role exhausted its restarts)
  | 'shutting_down';

/** The header as it is on the wire (field names are part of the protocol). */
export interface Header {
  version: number;
  kind: Kind;
  /** Request id, chosen by the caller; rep/err echo it. 0 for kinds without one. */
  id: number;
  method?: string;
  /** 'role/replica', 'coordinator' or 'node/NAME'. */
  sender: string;
  tensors?: TensorDesc[];
  meta?: Meta;
  metrics?: Metrics;
  /** req only: milliseconds the caller still waits, counted from sending (absent: no deadline). */
  timeout_ms?: number;
  error?: ErrorValue;
}

export interface Message extends Header { data: Tensors }

/** An error as a value that can also be thrown; `retriable` says whether the same call may succeed later. */
export class RuntimeError extends Error implements ErrorValue {
  /** Set by the coordinator on an error a role process answered: the last lines of its log, for the user's error message. */
  roleLog?: { file: string; lines: string[] };
  constructor(readonly code: ErrorCode, message: string, readonly retriable = false) {
    super(message);
    this.name = 'RuntimeError';
  }
  toValue(): ErrorValue {
    return { code: this.code, message: this.message, retriable: this.retriable };
  }
  static from(v: ErrorValue): RuntimeError {
    return new RuntimeError(v.code, v.message, v.retriable);
  }
}

// Plain msgpack maps (no msgpackr record extension) so that any msgpack library can read them.
const packr = new Packr({ useRecords: false, int64AsType: 'number', mapsAsObjects: true });

/** The frames of one message; tensor frames are views on the tensors' memory. */
export function encode(h: Omit<Header, 'version' | 'tensors'>, tensors: Tensors = {}): Buffer[] {
  const descs: TensorDesc[] = [];
  const frames: Buffer[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    checkTensor(`tensor '${name}'`, t);
    descs.push({ name, dtype: t.dtype, shape: t.shape });
    frames.push(tensorBytes(t));
  }
  const header: Header = { version: PROTOCOL_VERSION, ...h };
  if (descs.length) header.tensors = descs;
  return [packr.pack(stripUndefined(header)), ...frames];
}

function stripUndefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

export type Decoded = { ok: true; msg: Message } | { ok: false; error: RuntimeError; id: number };

/**
 * Parses frames into a message; never throws. A header that does not parse,
 * a wrong version, an unknown kind, or tensor frames that do not match their
 * descriptors come back as an error value (with the request id when it was
 * readable, so that the sender can be answered).
 */
export function decode(frames: Buffer[]): Decoded {
  let h: Header;
  try {
    if (frames.length === 0) throw new Error('empty message');
    h = packr.unpack(frames[0]);
  } catch (e) {
    return { ok: false, id: 0, error: new RuntimeError('bad_message', `header is not msgpack: ${(e as Error).message}`) };
  }
  if (h === null || typeof h !== 'object' || Array.isArray(h))
    return { ok: false, id: 0, error: new RuntimeError('bad_message', 'header is not a msgpack map') };
  const id = Number.isSafeInteger(h.id) ? h.id : 0;
  const bad = (m: string) => ({ ok: false as const, id, error: new RuntimeError('bad_message', m) });
  if (h.version !== PROTOCOL_VERSION)
    return { ok: false, id, error: new RuntimeError('bad_version', `protocol version ${JSON.stringify(h.version)} is not supported (this side speaks ${PROTOCOL_VERSION})`) };
  if (!KINDS.includes(h.kind)) return bad(`unknown kind ${JSON.stringify(h.kind)}`);
  if (!Number.isSafeInteger(h.id)) return bad(`field 'id' must be an integer, got ${JSON.stringify(h.id)}`);
  if (typeof h.sender !== 'string') return bad(`field 'sender' must be a string`);
  if (h.method !== undefined && typeof h.method !== 'string') return bad(`field 'method' must be a string`);
  if (h.kind === 'req' && !h.method) return bad(`a req needs a 'method'`);
  if (h.meta !== undefined && (h.meta === null || typeof h.meta !== 'object' || Array.isArray(h.meta))) return bad(`field 'meta' must be a map`);
  if (h.timeout_ms !== undefined && (typeof h.timeout_ms !== 'number' || !(h.timeout_ms >= 0))) return bad(`field 'timeout_ms' must be a number >= 0`);
  if (h.kind === 'err') {
    const e = h.error;
    if (!e || typeof e.code !== 'string' || typeof e.message !== 'string') return bad(`an err needs 'error' {code, message, retriable}`);
    e.retriable = e.retriable === true;
  }
  const descs = h.tensors ?? [];
  if (!Array.isArray(descs)) return bad(`field 'tensors' must be a list`);
  if (descs.length !== frames.length - 1)
    return bad(`header lists ${descs.length} tensors but ${frames.length - 1} tensor frames came`);
  const data: Tensors = {};
  for (let i = 0; i < descs.length; i++) {
    const d = descs[i];
    if (!d || typeof d.name !== 'string' || !isDType(d.dtype) || !Array.isArray(d.shape) || !d.shape.every((x) => Number.isSafeInteger(x) && x >= 0))
      return bad(`tensor descriptor ${i} must be {name, dtype, shape} with a known dtype, got ${JSON.stringify(d)}`);
    if (Object.prototype.hasOwnProperty.call(data, d.name)) return bad(`tensor '${d.name}' appears twice`);
    if (numel(d.shape) > Number.MAX_SAFE_INTEGER / 8) return bad(`tensor '${d.name}' is too large`);
    try {
      data[d.name] = tensorFromFrame(d.name, d.dtype, d.shape, frames[i + 1]);
    } catch (e) {
      return bad((e as Error).message);
    }
  }
  delete h.tensors;
  return { ok: true, msg: { ...h, data } };
}
