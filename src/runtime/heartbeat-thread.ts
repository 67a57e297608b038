// A role's heartbeat thread (started by src/runtime/role-server.ts): its own
// DEALER to the coordinator says hello on the 'heartbeat' channel with the
// process's token, then beats every heartbeatMs. It lives as long as the
// process: a stopped (SIGSTOP) or dead process stops beating, a busy one
// does not.
import { workerData } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { encode } from './protocol.js';
import type { CurveClientKeys } from './startup.js';

interface BeatSpec {
  endpoint: string;
  curve: CurveClientKeys | null;
  role: string;
  replica: number;
  token: string;
  heartbeatMs: number;
  sender: string;
}

const spec = workerData as BeatSpec;
const sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 4 });
if (spec.curve) {
  sock.curveServerKey = spec.curve.serverKey;
  sock.curvePublicKey = spec.curve.publicKey;
  sock.curveSecretKey = spec.curve.secretKey;
}
sock.connect(spec.endpoint);
// Never a receive and never a send that waits: zeromq.js aborts the process
// when it exits with an operation of a worker thread's socket pending. The
// coordinator's replies (one 'ready') stay unread in the socket's queue.
let greeted = false;
const beat = () => {
  if (!sock.writable) return;
  const meta = greeted ? undefined : { role: spec.role, replica: spec.replica, token: spec.token, pid: process.pid, channel: 'heartbeat' };
  sock.send(encode({ kind: greeted ? 'hb' : 'hello', id: 0, sender: spec.sender, meta })).catch(() => {});
  greeted = true;
};
beat();
setInterval(beat, Math.min(spec.heartbeatMs, 100));
