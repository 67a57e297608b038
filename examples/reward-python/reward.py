#!/usr/bin/env python3
"""A Quartet reward role in Python, with pyzmq and msgpack only.

It speaks the wire protocol of docs/protocol.md: it reads its start-up
variables (QUARTET_*), connects a DEALER to the coordinator, says hello,
answers `score` requests (plus the built-in ping, stats and shutdown),
heartbeats, and exits on bye, SIGTERM, when its parent agent dies, or when
the coordinator has been silent too long.

`score` (docs/protocol.md): meta `prompts`, `answers` (decoded text, the
answer without pads and without the end token) and `eos` (whether the
answer ended with the end token; false: cut at the length limit), one entry
per row, beside tensors `ids` and `mask`, i32 [B, T], and meta
`promptLength` P. Reply: `scores` f32 [B], metrics `mean_score`.
The scorer here counts a letter in the answer (`--letter`, default "e").
Replace `score_answer` with your own.

Config (the command's relative paths resolve against the config file):
  "reward": { "kind": "command",
              "command": ["/usr/bin/python3", "reward.py", "--letter", "e"] }
"""
import argparse
import array
import json
import os
import signal
import socket
import sys
import time

import msgpack
import zmq

PROTOCOL_VERSION = 1
# dtype -> array typecode (all little-endian on the wire)
TYPECODES = {"f32": "f", "f64": "d", "i8": "b", "u8": "B", "i16": "h", "i32": "i", "i64": "q", "bool": "B", "f16": "H", "bf16": "H"}


OPTIONS = argparse.Namespace(letter="e")


def score_answer(prompt, answer, eos):
    """The reward of one answer: how often the letter occurs in it.

    prompt, answer: str (decoded; the answer has no pads and no end token);
    eos: bool, the answer ended with the end token.
    """
    return float(answer.lower().count(OPTIONS.letter))


class ProtocolError(Exception):
    def __init__(self, code, message, retriable=False):
        super().__init__(message)
        self.code = code
        self.retriable = retriable


def read_startup():
    env = os.environ
    s = {
        "endpoint": env["QUARTET_ENDPOINT"],
        "role": env["QUARTET_ROLE"],
        "replica": int(env["QUARTET_REPLICA"]),
        "token": env["QUARTET_TOKEN"],
        "threads": int(env["QUARTET_THREADS"]),
        "devices": env.get("QUARTET_DEVICES", "").split(),
        "args": json.loads(env["QUARTET_ARGS"]),
        "heartbeat_ms": int(env["QUARTET_HEARTBEAT_MS"]),
        "coordinator_timeout_ms": int(env["QUARTET_COORDINATOR_TIMEOUT_MS"]),
        "parent_pid": int(env["QUARTET_PARENT_PID"]),
        "curve": None,
    }
    if env.get("QUARTET_CURVE_SERVER_KEY"):
        s["curve"] = (env["QUARTET_CURVE_SERVER_KEY"], env["QUARTET_CURVE_PUBLIC_KEY"], env["QUARTET_CURVE_SECRET_KEY"])
    return s


def to_array(desc, frame):
    """A tensor frame as a flat array.array (one copy; fine for reward inputs)."""
    code = TYPECODES.get(desc.get("dtype"))
    if code is None:
        raise ProtocolError("bad_message", "unknown dtype %r" % desc.get("dtype"))
    a = array.array(code)
    a.frombytes(frame)
    if sys.byteorder != "little":
        a.byteswap()
    n = 1
    for d in desc["shape"]:
        n *= d
    if len(a) != n:
        raise ProtocolError("bad_message", "tensor %r: shape %r needs %d elements, frame has %d" % (desc["name"], desc["shape"], n, len(a)))
    return a


class Role:
    def __init__(self, s):
        self.s = s
        self.sender = "%s/%d" % (s["role"], s["replica"])
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 1000
        self.sock.sndbuf = self.sock.rcvbuf = 4 * 1024 * 1024  # fewer turns for large tensors
        if s["curve"]:
            server, public, secret = s["curve"]
            self.sock.curve_serverkey = server.encode()
            self.sock.curve_publickey = public.encode()
            self.sock.curve_secretkey = secret.encode()
        self.sock.connect(s["endpoint"])
        self.calls = 0
        self.stopping = False
        self.started = time.time()

    def send(self, kind, id=0, meta=None, tensors=None, error=None, metrics=None):
        header = {"version": PROTOCOL_VERSION, "kind": kind, "id": id, "sender": self.sender}
        frames = []
        if meta is not None:
            header["meta"] = meta
        if metrics is not None:
            header["metrics"] = metrics
        if error is not None:
            header["error"] = error
        if tensors:
            header["tensors"] = []
            for name, (dtype, shape, arr) in tensors.items():
                header["tensors"].append({"name": name, "dtype": dtype, "shape": shape})
                frames.append(arr.tobytes())
        self.sock.send_multipart([msgpack.packb(header, use_bin_type=True)] + frames)

    def error(self, id, code, message, retriable=False):
        self.send("err", id, error={"code": code, "message": message, "retriable": retriable})

    def log(self, line):
        sys.stderr.write("[python reward %s] %s\n" % (self.sender, line))
        sys.stderr.flush()

    def handle(self, header, frames):
        method = header.get("method")
        meta = header.get("meta") or {}
        descs = header.get("tensors") or []
        if len(descs) != len(frames):
            raise ProtocolError("bad_message", "header lists %d tensors but %d tensor frames came" % (len(descs), len(frames)))
        tensors = {d["name"]: (d, to_array(d, f)) for d, f in zip(descs, frames)}
        if method == "ping":
            return {"meta": {"pid": os.getpid()}}
        if method == "stats":
            return {"meta": {"pid": os.getpid(), "role": self.s["role"], "replica": self.s["replica"], "threads": self.s["threads"],
                             "devices": self.s["devices"], "calls": self.calls, "uptime_s": time.time() - self.started, "language": "python"}}
        if method == "shutdown":
            self.stopping = True
            return {}
        if method == "score":
            prompts, answers, eos = meta.get("prompts"), meta.get("answers"), meta.get("eos")
            if not isinstance(answers, list) or not isinstance(prompts, list) or not isinstance(eos, list):
                raise ProtocolError("bad_message", "score needs meta 'prompts', 'answers' and 'eos', one entry per row")
            B = len(answers)
            if len(prompts) != B or len(eos) != B or ("ids" in tensors and tensors["ids"][0]["shape"][0] != B):
                raise ProtocolError("bad_message", "score: meta 'prompts', 'answers', 'eos' and tensor 'ids' must have one entry per row")
            t0 = time.time()
            try:
                scores = array.array("f", (score_answer(p, a, e) for p, a, e in zip(prompts, answers, eos)))
            except Exception as e:
                # The scorer's own failure may be passing (a busy service it calls): the coordinator sends the call again (reward.retries).
                raise ProtocolError("method_failed", "score_answer raised %r" % e, retriable=True)
            mean = sum(scores) / B if B else 0.0
            return {"tensors": {"scores": ("f32", [B], scores)},
                    "metrics": {"mean_score": mean, "ms_per_sample": 1000.0 * (time.time() - t0) / max(B, 1)}}
        raise ProtocolError("unknown_method", "role '%s' has no method '%s' (has ping, stats, shutdown, score)" % (self.s["role"], method))

    def run(self):
        s = self.s
        self.send("hello", 0, meta={"role": s["role"], "replica": s["replica"], "token": s["token"], "pid": os.getpid(),
                                    "host": socket.gethostname(), "devices": s["devices"], "threads": s["threads"],
                                    "capabilities": {"methods": ["ping", "stats", "shutdown", "score"], "language": "python"}})
        hb = s["heartbeat_ms"] / 1000.0
        last_heard = last_beat = time.time()
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        while not self.stopping:
            ready = dict(poller.poll(int(hb * 1000)))
            now = time.time()
            if s["parent_pid"] and os.getppid() != s["parent_pid"]:
                self.log("parent agent is gone; exiting")
                return 1
            if self.sock in ready:
                last_heard = now
                frames = self.sock.recv_multipart()
                try:
                    header = msgpack.unpackb(frames[0], raw=False)
                except Exception as e:  # not msgpack at all: log; there is no id to answer
                    self.log("refused a message: header is not msgpack: %s" % e)
                    continue
                if not isinstance(header, dict):
                    self.log("refused a message: header is not a msgpack map")
                    continue
                id = header.get("id", 0)
                if header.get("version") != PROTOCOL_VERSION:
                    self.log("refused protocol version %r" % header.get("version"))
                    self.error(id, "bad_version", "protocol version %r is not supported (this side speaks %d)" % (header.get("version"), PROTOCOL_VERSION))
                    continue
                kind = header.get("kind")
                if kind == "bye":
                    break
                if kind == "err":
                    self.log("coordinator refused us: %s" % header.get("error"))
                    return 2
                if kind == "req":
                    self.calls += 1
                    try:
                        r = self.handle(header, frames[1:])
                        self.send("rep", id, meta=r.get("meta"), tensors=r.get("tensors"), metrics=r.get("metrics"))
                    except ProtocolError as e:
                        self.log("%s failed: %s" % (header.get("method"), e))
                        self.error(id, e.code, str(e), e.retriable)
                    except Exception as e:
                        self.log("method failed: %r" % e)
                        self.error(id, "method_failed", "%s: %r" % (header.get("method"), e))
                # hello-ack ('ready') and heartbeats need no answer
            if now - last_heard > s["coordinator_timeout_ms"] / 1000.0:
                self.log("no word from the coordinator; exiting")
                return 1
            if now - last_beat >= hb:
                self.send("hb")
                last_beat = now
        self.send("bye")
        return 0


def main(argv=None):
    global OPTIONS
    parser = argparse.ArgumentParser(description="A Quartet reward role: scores answers by how often a letter occurs in them.")
    parser.add_argument("--letter", default="e", help="the letter counted (default: e)")
    OPTIONS = parser.parse_args(argv)
    role = Role(read_startup())
    code = role.run()
    role.sock.close()
    role.ctx.term()
    return code


if __name__ == "__main__":
    sys.exit(main())
