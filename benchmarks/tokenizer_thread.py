"""Streaming encode with the next window tokenized in a background thread, or in turn: which is faster here.

    .venv/bin/python benchmarks/tokenizer_thread.py --runs 3

Runs ``encode_iter``'s engine (``embedstack.engine.stream``) on each corpus, windows of 512 inputs, with and
without the prefetch thread, interleaved; prints medians. The tokenizer's own thread pool is on, as it is by
default (TOKENIZERS_PARALLELISM unset).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import torch
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer
from embedstack.defaults import default_model_path
from embedstack.engine import EncodePlan, stream
from embedstack.engine.streaming import prefetch_pays
from embedstack.evaluation.corpora import CORPORA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=int, default=512)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    plan = EncodePlan(device=model.device)
    print(f"CPU flags: {cpu_flags()}; torch threads {args.threads}; default prefetch here: {prefetch_pays(plan)}")
    print("| corpus | prefetch thread texts/s | in turn texts/s | ratio |\n|---|---|---|---|")
    for name, corpus in CORPORA.items():
        texts = corpus()
        rates: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.runs):
            for prefetch in (True, False):
                start = time.perf_counter()
                for _ in stream(model, texts, plan, window_size=args.window, prefetch=prefetch):
                    pass
                rates[prefetch].append(len(texts) / (time.perf_counter() - start))
        on, off = statistics.median(rates[True]), statistics.median(rates[False])
        print(f"| {name} | {on:,.1f} | {off:,.1f} | {on / off:.2f} |", flush=True)


if __name__ == "__main__":
    main()
