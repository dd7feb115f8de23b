#!/usr/bin/env python3
"""The BM25 reference of a BEIR-format collection, computed as BENCHMARKS.md's reference
figures are: rank_bm25's BM25Okapi (k1 1.5, b 0.75) over whole documents (title and text),
words lower-cased, PostgreSQL's English stop words removed, Porter stems (NLTK); nDCG@10,
Recall@10 and top hit relevant over the test queries, graded judgments as gains.

    bench/bm25_reference.py DIR     # needs rank_bm25 and nltk (bench/bm25_reference installs them)
"""

import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from retrieval import read_collection  # noqa: E402

from nltk.stem.porter import PorterStemmer  # noqa: E402
from rank_bm25 import BM25Okapi  # noqa: E402

STOP = "/usr/share/postgresql/15/tsearch_data/english.stop"


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    corpus, tests, relevant = read_collection(sys.argv[1])
    stop = set(open(STOP, encoding="utf-8").read().split()) if os.path.exists(STOP) else set()
    stem = PorterStemmer().stem
    cache = {}

    def terms(text):
        out = []
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            if word in stop:
                continue
            if word not in cache:
                cache[word] = stem(word)
            out.append(cache[word])
        return out

    names = list(corpus)
    bm25 = BM25Okapi([terms(corpus[n]) for n in names])
    ndcg = recall = top = 0.0
    for query_id, text in tests.items():
        scores = bm25.get_scores(terms(text))
        ranked = [names[i] for i in sorted(range(len(names)), key=lambda i: -scores[i])[:10] if scores[i] > 0]
        wanted = relevant[query_id]
        dcg = sum(wanted.get(n, 0) / math.log2(r + 2) for r, n in enumerate(ranked))
        ideal = sorted(wanted.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
        ndcg += dcg / idcg if idcg else 0
        recall += len([n for n in ranked if n in wanted]) / len(wanted)
        top += 1 if ranked and ranked[0] in wanted else 0
    n = len(tests)
    print(f"BM25Okapi reference          nDCG@10 {ndcg / n:.3f}   Recall@10 {recall / n:.3f}   "
          f"top hit relevant {top / n:.3f}   ({n} queries, {len(corpus)} documents)")


if __name__ == "__main__":
    main()
