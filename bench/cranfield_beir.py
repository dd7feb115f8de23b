#!/usr/bin/env python3
"""The Cranfield collection in BEIR format, for bench/retrieval (BENCHMARKS.md, "Retrieval").

    bench/cranfield_beir.py SRC OUT

SRC holds Cranfield's original files (1,400 abstracts of aerodynamics papers, 225 queries,
graded judgments; Cleverdon, 1967): cran.all.1400, cran.qry, cranqrel. OUT receives
corpus.jsonl, queries.jsonl and qrels/test.tsv. The queries are numbered 1 to 225 in the
order of cran.qry, as cranqrel numbers them (its `.I` numbers skip). Judgments are graded
1 (a complete answer) to 4 (minimum interest); they become gains 4 to 1, and -1 (no
relevant document) is left out. The two empty entries of the corpus are left out too.
"""

import json
import os
import sys


def records(path):
    """`.I` records of a Cranfield file: (id, {field letter: text})."""
    out, current, field = [], None, None
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith(".I "):
                current = (line[3:].strip(), {})
                out.append(current)
                field = None
            elif len(line) == 2 and line[0] == "." and line[1].isalpha():
                field = line[1]
                current[1].setdefault(field, "")
            elif current is not None and field:
                current[1][field] += line.strip() + " "
    return [(i, {k: " ".join(v.split()) for k, v in fields.items()}) for i, fields in out]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    with open(os.path.join(out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for doc_id, fields in records(os.path.join(src, "cran.all.1400")):
            title = fields.get("T", "")
            text = fields.get("W", "")
            # The abstract repeats the title first.
            if title and text.startswith(title):
                text = text[len(title):].strip()
            if not (title or text):
                continue  # two entries of the collection are empty
            f.write(json.dumps({"_id": str(int(doc_id)), "title": title, "text": text}) + "\n")
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for number, (_, fields) in enumerate(records(os.path.join(src, "cran.qry")), start=1):
            f.write(json.dumps({"_id": str(number), "text": fields.get("W", "")}) + "\n")
    with open(os.path.join(src, "cranqrel"), encoding="utf-8") as f, \
            open(os.path.join(out, "qrels", "test.tsv"), "w", encoding="utf-8") as qrels:
        qrels.write("query-id\tcorpus-id\tscore\n")
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and 1 <= int(parts[2]) <= 4:
                qrels.write(f"{int(parts[0])}\t{int(parts[1])}\t{5 - int(parts[2])}\n")


if __name__ == "__main__":
    main()
