#!/usr/bin/env python3
"""An OpenAI-compatible embeddings server on this machine, for bench/retrieval's HYBRID runs.

    bench/embeddings            # sets up its Python environment, then runs this on :9000

POST /v1/embeddings {"model", "input": str | [str]} answers {"data": [{"index", "embedding"}],
"model", "usage"} with WordLlama's 256-dimension model (the `wordllama` package ships its
weights: nothing is downloaded). Any model name is accepted.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import wordllama
from wordllama import WordLlama

PORT = int(os.environ.get("PORT", "9000"))

# The package looks for its tokenizer under "tokenizers/" in the cache directory: point one
# at the files it ships, and forbid downloads.
package = Path(wordllama.__file__).parent
cache = Path(os.environ.get("WORDLLAMA_CACHE", "/tmp/weft-wordllama"))
for kind in ("tokenizers", "weights"):
    (cache / kind).mkdir(parents=True, exist_ok=True)
    for shipped in (package / kind).glob("*"):
        link = cache / kind / shipped.name
        if not link.exists():
            link.symlink_to(shipped)
MODEL = WordLlama.load(cache_dir=cache, disable_download=True)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            self.send_error(404)
            return
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts)
        vectors = MODEL.embed(texts, norm=True) if texts else []
        body = json.dumps({
            "object": "list",
            "model": request.get("model", "wordllama"),
            "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                     for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": sum(len(t.split()) for t in texts),
                      "total_tokens": sum(len(t.split()) for t in texts)},
        }).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"embeddings on http://127.0.0.1:{PORT}/v1", file=sys.stderr)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
