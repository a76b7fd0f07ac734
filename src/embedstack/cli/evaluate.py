"""``embedstack eval sts``: cosine Spearman on an STS Benchmark split."""

from __future__ import annotations

import argparse

from embedstack.cli.model_options import add_model_arguments, load_model
from embedstack.evaluation.datasets import sts_benchmark
from embedstack.evaluation.sts import evaluate_sts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack eval``."""
    parser.add_argument("task", choices=["sts"], help="sts: cosine Spearman on the STS Benchmark")
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--batch-size", type=int, help="cap on rows per pass (default: the token budget decides)")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Encode the split's sentence pairs and print the score."""
    pairs = sts_benchmark(args.split)
    model = load_model(args)
    result = evaluate_sts(model, pairs, batch_size=args.batch_size, show_progress_bar=True)
    print(f"STS Benchmark {args.split} ({result.pairs} pairs): cosine Spearman {result.cosine_spearman:.2f}")
    return 0
