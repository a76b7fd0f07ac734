"""embedstack's CrossEncoder vs sentence-transformers 6.2's: rank and predict throughput on the same pairs, in one run.

    .venv/bin/python benchmarks/rerank_throughput.py --runs 3            # torch fp32
    .venv/bin/python benchmarks/rerank_throughput.py --runs 3 --int8     # also int8 (quantize, self-checked)

The model: all-MiniLM-L6-v2's backbone with a new, random one-label classifier head (BertForSequenceClassification,
MiniLM-sized: speed does not depend on the weights), saved once into a temporary folder and loaded by both. Two
workloads: ``rank`` of one query against the first 1,000 English Wikipedia extracts, and ``predict`` on the STS
Benchmark test pairs (1,379). Runs are interleaved (reference, embedstack, reference, ...) and medians reported;
the reference at its default batch_size (32), embedstack at its own (None: the token budget decides the rows).
"embedstack native" runs the classifier on the native backend (plain torch, inference as a traced graph). The CPU's
flags are printed with the results.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from corpora import wiki
from encode_throughput import cpu_flags, matmul_peak_gflops

from embedstack.defaults import default_model_path
from embedstack.evaluation.datasets import sts_benchmark

QUERY = "Which country has the largest population in the world?"


def build_classifier(folder: Path) -> Path:
    """all-MiniLM-L6-v2 with a random one-label sequence-classification head, as a plain Hugging Face folder."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    source = default_model_path()
    model = BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(folder)
    return folder


def workloads() -> dict[str, tuple[str, object]]:
    """name -> (method, its input): rank(QUERY, 1,000 extracts) and predict(STS-B test pairs)."""
    sts = sts_benchmark("test")
    return {
        "rank wiki 1000": ("rank", wiki(1000)),
        "predict sts pairs": ("predict", list(zip(sts.sentences1, sts.sentences2))),
    }


def call(model, method: str, data, reference: bool):
    options = {"batch_size": 32} if reference else {}  # each at its own default
    if method == "rank":
        hits = model.rank(QUERY, data, **options)
        return np.array([hit["score"] for hit in sorted(hits, key=lambda hit: hit["corpus_id"])])
    return np.asarray(model.predict(data, **options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true", help="also embedstack's CrossEncoder.quantize('int8')")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    from sentence_transformers import CrossEncoder as Reference

    from embedstack import CrossEncoder

    print(f"CPU flags: {cpu_flags()}; fp32 matmul peak {matmul_peak_gflops():.1f} GFLOP/s; {args.threads} threads")
    with tempfile.TemporaryDirectory() as staging:
        folder = str(build_classifier(Path(staging) / "classifier"))
        systems = {
            "reference": Reference(folder, device="cpu"),
            "embedstack": CrossEncoder(folder, device="cpu"),
            "embedstack native": CrossEncoder(folder, device="cpu", backend="native"),  # BERT classifier, traced
        }
        if args.int8:
            systems["embedstack int8"] = CrossEncoder(folder, device="cpu").quantize("int8")
        print("| workload | system | pairs/s | vs reference | max abs diff to reference |")
        print("|---|---|---|---|---|")
        for name, (method, data) in workloads().items():
            times: dict[str, list[float]] = {system: [] for system in systems}
            scores = {}
            for _ in range(args.runs):  # interleaved, so drifts in machine speed hit every system alike
                for system, model in systems.items():
                    start = time.perf_counter()
                    scores[system] = call(model, method, data, system == "reference")
                    times[system].append(time.perf_counter() - start)
            base = statistics.median(times["reference"])
            for system in systems:
                seconds = statistics.median(times[system])
                diff = float(np.abs(scores[system] - scores["reference"]).max())
                print(f"| {name} | {system} | {len(data) / seconds:,.1f} | {base / seconds:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
