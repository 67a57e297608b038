// zeromq.js allows one send in progress per socket; heartbeats, replies and
// requests come from independent async paths, so every send goes through a
// queue that keeps them in order.
import type * as zmq from 'zeromq';

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
