"""A deterministic stand-in for a hosted model: an OpenAI-wire server (stdlib only) on loopback, for
the agents example and the agent tests (assets/tests/it/agents.rs). `python3 model_server.py [SECONDS]`
prints its port first and, given SECONDS, stops after that long.

POST /v1/chat/completions answers the last message by its first word:
  CLASSIFY <text> -> "billing" when the text mentions refund, invoice or charge, else "technical"
  SCORE <text>    -> "0.3" when the text mentions angry or again, else "0.9"
  REPLY <text>    -> "Re: <text>"
  anything else   -> "ok"
usage: prompt_tokens = the prompt's words, completion_tokens = the answer's words.
With SPINE_TEST_OPENAI_KEY set, a request without "Authorization: Bearer <it>" is a 401.

For the tests:
POST /control {"hang_at": N}            -> the Nth request (counted from 1) never answers
              {"rate_limit_once": S}    -> the next request is a 429 with Retry-After: S
GET /stats -> {"requests": N, "prompts": [...], "rate_limited": N}. Prints its port first.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ.get("SPINE_TEST_OPENAI_KEY", "")
LOCK = threading.Lock()
STATS = {"requests": 0, "prompts": [], "rate_limited": 0}
CONTROL = {"hang_at": None, "rate_limit_once": None}


def answer(content):
    word, _, rest = content.partition(" ")
    low = rest.lower()
    if word == "CLASSIFY":
        return "billing" if any(w in low for w in ("refund", "invoice", "charge")) else "technical"
    if word == "SCORE":
        return "0.3" if any(w in low for w in ("angry", "again")) else "0.9"
    if word == "REPLY":
        return "Re: " + rest
    return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
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
        if self.path == "/control":
            with LOCK:
                CONTROL.update(body)
            return self.reply(200, CONTROL)
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": "not found"}})
        if KEY and self.headers.get("authorization") != "Bearer " + KEY:
            return self.reply(401, {"error": {"message": "bad key"}})
        content = body["messages"][-1]["content"]
        with LOCK:
            STATS["requests"] += 1
            n = STATS["requests"]
            hang = CONTROL["hang_at"] == n
            limited = CONTROL["rate_limit_once"]
            if limited is not None:
                CONTROL["rate_limit_once"] = None
                STATS["rate_limited"] += 1
            else:
                STATS["prompts"].append(content)
        if hang:
            time.sleep(3600)
            return
        if limited is not None:
            return self.reply(429, {"error": {"message": "rate limited"}},
                              [("retry-after", str(limited))])
        text = answer(content)
        prompt_tokens = len(content.split())
        completion_tokens = len(text.split())
        self.reply(200, {
            "id": "chatcmpl-%d" % n, "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
if len(sys.argv) > 1:
    threading.Timer(float(sys.argv[1]), server.shutdown).start()
server.serve_forever()
