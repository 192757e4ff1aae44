"""A deterministic OpenAI-wire test server for the eval tests (stdlib only), on loopback.

POST /v1/chat/completions answers "What is A + B?" by model:
  good, same  -> A + B
  bad         -> A + B + 1 when A is a multiple of 5 (a fifth of the cases), else A + B
  judge       -> "Score: 10" when the prompt's "Expected: X" equals its "Got: Y", else "Score: 0"
anything else is a 404. A request without "Authorization: Bearer <SPINE_TEST_OPENAI_KEY>" is a 401.
GET /stats -> {"requests": N, "by_model": {...}}. Prints its port on the first line of stdout.
"""
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ.get("SPINE_TEST_OPENAI_KEY", "")
LOCK = threading.Lock()
STATS = {"requests": 0, "by_model": {}}


def answer(model, content):
    if model == "judge":
        exp = re.search(r"Expected:\s*(\S+)", content)
        got = re.search(r"Got:\s*(\S+)", content)
        ok = exp and got and exp.group(1) == got.group(1)
        return "Score: 10" if ok else "Score: 0"
    m = re.search(r"What is (\d+) \+ (\d+)", content)
    if not m:
        return "I do not know."
    a, b = int(m.group(1)), int(m.group(2))
    if model in ("good", "same"):
        return str(a + b)
    if model == "bad":
        return str(a + b + 1) if a % 5 == 0 else str(a + b)
    return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                self.reply(200, STATS)
        else:
            self.reply(404, {"error": {"message": "not found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": "not found"}})
        if self.headers.get("authorization") != "Bearer " + KEY:
            return self.reply(401, {"error": {"message": "bad key"}})
        model = body.get("model", "")
        content = body["messages"][-1]["content"]
        with LOCK:
            STATS["requests"] += 1
            STATS["by_model"][model] = STATS["by_model"].get(model, 0) + 1
        text = answer(model, content)
        if text is None:
            return self.reply(404, {"error": {"message": "model not found"}})
        self.reply(200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": len(content.split()), "completion_tokens": 1,
                      "total_tokens": len(content.split()) + 1},
        })


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
