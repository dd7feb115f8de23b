#!/usr/bin/env python3
"""Retrieval quality of a BEIR-format collection through Weft's API (BENCHMARKS.md, "Retrieval").

    bench/retrieval.py DIR      # DIR holds corpus.jsonl, queries.jsonl and qrels/test.tsv

Needs a running server (WEFT_URL, default http://127.0.0.1:8080); `bench/retrieval` starts
one of its own. One document per corpus entry (its title, a blank line, its text), named by
the entry's id, in a KEYWORD dataset; then every test query through `searchDataset(topK: 10)`,
each document counted once at its best-ranked segment, a query without hits scoring 0:
nDCG@10, Recall@10, whether the top hit is relevant, and the latency of each search.

With EMBEDDING_BASE_URL and EMBEDDING_MODEL (an OpenAI-compatible embeddings server), a
HIGH_QUALITY dataset too, measured three ways: HYBRID (its default weight), vectors only
(weight 1) and keywords only (weight 0).
"""

import concurrent.futures
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("WEFT_URL", "http://127.0.0.1:8080").rstrip("/")
WORKERS = int(os.environ.get("WORKERS", "4"))
TOP_K = 10


# The bench's account: an access token lasts minutes, an ingestion through a slow embedding
# model can last longer, so a refused token is renewed by signing in again.
ACCOUNT = {}


def graphql(query, variables=None, token=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(URL + "/graphql", data=body, method="POST")
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + ACCOUNT.get("token", token))
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as e:
        answer = json.load(e)
    errors = answer.get("errors") or []
    if token and ACCOUNT and any(e.get("extensions", {}).get("code") == "UNAUTHENTICATED" for e in errors):
        ACCOUNT["token"] = graphql("mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                                   {"i": ACCOUNT["login"]})["login"]["accessToken"]
        return graphql(query, variables, token)
    if errors:
        raise SystemExit("GraphQL error: " + json.dumps(errors))
    return answer["data"]


def read_collection(folder):
    corpus = {}
    with open(os.path.join(folder, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                title = (entry.get("title") or "").strip()
                text = (entry.get("text") or "").strip()
                corpus[str(entry["_id"])] = f"{title}\n\n{text}" if title else text
    queries = {}
    with open(os.path.join(folder, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                queries[str(entry["_id"])] = entry["text"]
    relevant = {}
    with open(os.path.join(folder, "qrels", "test.tsv"), encoding="utf-8") as f:
        for number, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
                continue  # the header
            if len(parts) >= 3 and int(parts[2]) > 0:
                relevant.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    tests = {q: queries[q] for q in relevant if q in queries}
    return corpus, tests, relevant


def ingest(token, dataset_id, corpus):
    """Adds every entry as a document; waits until all are indexed. Returns {document id: entry id}."""
    mutation = ("mutation($i: CreateDocumentInput!) { createDocument(input: $i) { id } }")

    def add(item):
        name, text = item
        data = graphql(mutation, {"i": {"datasetId": dataset_id, "name": name, "text": text}}, token)
        return data["createDocument"]["id"], name

    started = time.time()
    names = {}
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for document_id, name in pool.map(add, corpus.items()):
            names[document_id] = name
    count = """query($d: UUID!, $s: IndexingStatus) { dataset(id: $d) {
        documents(first: 1, filter: { indexingStatus: $s }) { totalCount } } }"""
    while True:
        left = 0
        for status in ["WAITING", "PARSING", "SPLITTING", "INDEXING"]:
            data = graphql(count, {"d": dataset_id, "s": status}, token)
            left += data["dataset"]["documents"]["totalCount"]
        failed = graphql(count, {"d": dataset_id, "s": "ERROR"}, token)["dataset"]["documents"]["totalCount"]
        if failed:
            raise SystemExit(f"{failed} documents failed to index")
        if left == 0:
            break
        time.sleep(1)
    print(f"  ingested {len(names)} documents in {time.time() - started:.1f} s", flush=True)
    return names


def evaluate(token, dataset_id, names, tests, relevant, label):
    search = """query($d: UUID!, $q: String!, $k: Int) {
        searchDataset(datasetId: $d, query: $q, topK: $k) { documentId score } }"""

    def run(item):
        query_id, text = item
        started = time.perf_counter()
        hits = graphql(search, {"d": dataset_id, "q": text, "k": TOP_K}, token)["searchDataset"]
        return query_id, hits, time.perf_counter() - started

    # One at a time, so the latencies are those of a search alone.
    results = [run(item) for item in tests.items()]
    ndcg = recall = top = 0.0
    latencies = []
    for query_id, hits, seconds in results:
        latencies.append(seconds * 1000)
        ranked = []
        for hit in hits:
            name = names.get(hit["documentId"])
            if name is not None and name not in ranked:
                ranked.append(name)
        ranked = ranked[:TOP_K]
        wanted = relevant[query_id]
        dcg = sum(wanted.get(name, 0) / math.log2(rank + 2) for rank, name in enumerate(ranked))
        ideal = sorted(wanted.values(), reverse=True)[:TOP_K]
        idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
        ndcg += dcg / idcg if idcg else 0
        recall += len([n for n in ranked if n in wanted]) / len(wanted)
        top += 1 if ranked and ranked[0] in wanted else 0
    n = len(results)
    latencies.sort()
    p50 = latencies[int(n * 0.5)]
    p99 = latencies[min(n - 1, int(n * 0.99))]
    print(f"{label:<28} nDCG@10 {ndcg / n:.3f}   Recall@10 {recall / n:.3f}   top hit relevant "
          f"{top / n:.3f}   search p50 {p50:.1f} ms, p99 {p99:.1f} ms ({n} queries)", flush=True)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    corpus, tests, relevant = read_collection(sys.argv[1])
    print(f"{len(corpus)} documents, {len(tests)} test queries", flush=True)
    stamp = str(int(time.time() * 1000))
    login = {"email": f"retrieval-{stamp}@example.com", "password": f"retrieval bench {stamp}"}
    token = graphql("mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                    {"i": {**login, "name": "Retrieval"}})["register"]["accessToken"]
    ACCOUNT.update(login=login, token=token)
    workspace = graphql('mutation { createOrganization(input: { name: "Retrieval" }) { teams { workspaces { id } } } }',
                        token=token)["createOrganization"]["teams"][0]["workspaces"][0]["id"]
    create = "mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }"

    print("KEYWORD dataset", flush=True)
    keyword = graphql(create, {"i": {"workspaceId": workspace, "name": "keyword", "indexingTechnique": "KEYWORD",
                                     "topK": TOP_K}}, token)["createDataset"]["id"]
    names = ingest(token, keyword, corpus)
    evaluate(token, keyword, names, tests, relevant, "KEYWORD")

    base_url, model = os.environ.get("EMBEDDING_BASE_URL"), os.environ.get("EMBEDDING_MODEL")
    if not (base_url and model):
        return
    print(f"HIGH_QUALITY dataset embedded by {model} at {base_url}", flush=True)
    provider = graphql("mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) { id } }",
                       {"i": {"workspaceId": workspace, "name": "embeddings", "providerType": "OPENAI_COMPATIBLE",
                              "baseUrl": base_url, "apiKey": os.environ.get("EMBEDDING_API_KEY", "none"),
                              "models": [model]}}, token)["createLlmProvider"]["id"]
    hybrid = graphql(create, {"i": {"workspaceId": workspace, "name": "hybrid", "indexingTechnique": "HIGH_QUALITY",
                                    "topK": TOP_K, "embeddingProviderId": provider, "embeddingModel": model}},
                     token)["createDataset"]["id"]
    names = ingest(token, hybrid, corpus)
    weight = "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { vectorSimilarityWeight } }"
    evaluate(token, hybrid, names, tests, relevant, "HYBRID (default weight)")
    for w, label in [(1.0, "vectors only (weight 1)"), (0.0, "keywords only (weight 0)")]:
        graphql(weight, {"i": {"id": hybrid, "vectorSimilarityWeight": w}}, token)
        evaluate(token, hybrid, names, tests, relevant, label)


if __name__ == "__main__":
    main()
