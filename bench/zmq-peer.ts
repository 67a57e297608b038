// The far end of the runtime bench's baseline: a bare zeromq.js DEALER with
// no protocol on top. It answers a 'ping' frame with itself and any other
// message with the byte count of its last frame, until 'bye'.
// Usage (by bench/zmq-pair.ts): node dist/bench/zmq-peer.js ENDPOINT
import * as zmq from 'zeromq';

const endpoint = process.argv[2];
if (!endpoint) {
  console.error('usage: zmq-peer ENDPOINT');
  process.exit(2);
}
const parent = process.ppid;
// Ends by itself if the benchmark dies.
setInterval(() => { if (process.ppid !== parent) process.exit(1); }, 500).unref();

// Set by bench/zmq-pair.ts for a tcp + CURVE pair.
const curve = process.env.QUARTET_BENCH_CURVE ? (JSON.parse(process.env.QUARTET_BENCH_CURVE) as { serverKey: string; publicKey: string; secretKey: string }) : null;
const sock = new zmq.Dealer({ linger: 0, ...(curve && { curveServerKey: curve.serverKey, curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey }) });
sock.connect(endpoint);
await sock.send('hello');
for (;;) {
  const frames = await sock.receive();
  const kind = frames[0].toString();
  if (kind === 'bye') break;
  if (kind === 'ping') await sock.send(frames);
  else await sock.send(String(frames[frames.length - 1].length));
}
sock.close();
