"""The cost of running encode's passes through nn.Module.__call__ (so forward hooks and model.compile apply)
rather than calling the model's forward directly, as the engine did before.

    .venv/bin/python benchmarks/module_call.py --runs 3                  # sts and mixed
    .venv/bin/python benchmarks/module_call.py --runs 3 --corpus wiki

One model instance, switched between the two ways (its class swapped), in alternating order (call, direct,
direct, call, ...), so machine drift and warm-up hit both alike; medians of ``2 * runs`` encodes each.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import torch
from corpora import CORPORA

from embedstack import SentenceTransformer
from embedstack.backends.cpu_features import flag_summary
from embedstack.defaults import default_model_path


class CallingForwardDirectly(SentenceTransformer):
    """The engine's ``model(features)`` goes straight to ``forward``, skipping nn.Module.__call__."""

    def __call__(self, features, **kwargs):
        return self.forward(features, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", nargs="+", choices=list(CORPORA), default=["sts", "mixed"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    print(f"CPU flags: {flag_summary()}; torch {torch.__version__}, {args.threads} threads")
    print("| corpus | texts | through __call__ (s) | forward called directly (s) | __call__ / direct |")
    print("|---|---|---|---|---|")
    for name in args.corpus:
        texts = CORPORA[name]()
        model.encode(texts[:200])  # warm-up
        times: dict[type, list[float]] = {SentenceTransformer: [], CallingForwardDirectly: []}
        for _ in range(args.runs):
            for kind in (SentenceTransformer, CallingForwardDirectly, CallingForwardDirectly, SentenceTransformer):
                model.__class__ = kind
                start = time.perf_counter()
                model.encode(texts)
                times[kind].append(time.perf_counter() - start)
        model.__class__ = SentenceTransformer
        call, direct = (statistics.median(times[kind]) for kind in (SentenceTransformer, CallingForwardDirectly))
        print(f"| {name} | {len(texts)} | {call:.2f} | {direct:.2f} | {call / direct:.3f} |", flush=True)


if __name__ == "__main__":
    main()
