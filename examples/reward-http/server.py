#!/usr/bin/env python3
"""An HTTP scorer for `reward.kind = "http"` (docs/protocol.md), standard library only.

POST {"prompts": [str], "answers": [str], "eos": [bool]} -> {"scores": [float]}:
here the number of times a letter occurs in each answer. Replace score().

  python3 server.py --port 8000 --letter e
  quartet ppo ... --reward.kind=http --reward.url=http://127.0.0.1:8000/score
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--letter", default="e")
OPTS = parser.parse_args()


def score(prompt, answer, eos):
    return float(answer.lower().count(OPTS.letter))


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        scores = [score(p, a, e) for p, a, e in zip(body["prompts"], body["answers"], body["eos"])]
        out = json.dumps({"scores": scores}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


ThreadingHTTPServer(("127.0.0.1", OPTS.port), Handler).serve_forever()
