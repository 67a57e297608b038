// zeromq.js allows one send in progress per socket; heartbeats, replies and
// requests come from independent async paths, so every send goes through a
// queue that keeps them in order.
import type * as zmq from 'zeromq';

/**
 * Kernel socket buffers for the sockets that carry tensors. The default
 * (about 200 KB) makes a 64 MB frame cross in hundreds of sender/receiver
 * turns; 4 MB (Linux caps it at net.core.wmem_max/rmem_max) makes it a few
 * dozen, which matters most on a busy machine.
 */
export const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export class SendQueue {
  private tail: Promise<void> = Promise.resolve();
  constructor(private readonly sock: zmq.Writable & { closed: boolean }) {}

  /** Resolves once ZeroMQ has taken the message; rejects if the socket refused it. */
  send(frames: (Buffer | string)[]): Promise<void> {
    const next = this.tail.then(() => {
      if (this.sock.closed) throw new Error('socket closed');
      return this.sock.send(frames);
    });
    this.tail = next.catch(() => {});
    return next;
  }
}
