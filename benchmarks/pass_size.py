"""How many tokens a CPU forward pass should hold, and what one pass costs beyond its tokens.

    .venv/bin/python benchmarks/pass_size.py                 # all-MiniLM-L6-v2 (width 384)
    .venv/bin/python benchmarks/pass_size.py --width 768 --texts 600  # a random BERT of width 768

Prints texts/s on each corpus for token budgets from 256 to 16,384 (no row limit; budgets interleaved, medians
of --runs), and the fixed cost of a pass in tokens: the time of a one-row, 8-token pass over the time per token
of a 2,048-token pass. ``embedstack.engine.pass_size`` and ``embedstack.engine.batching`` hold the results.
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
from encode_throughput import cpu_flags

from embedstack import SentenceTransformer
from embedstack.defaults import default_model_path
from embedstack.engine import EncodePlan, default_max_batch_tokens, run
from embedstack.evaluation.corpora import CORPORA
from embedstack.modules import Pooling, Transformer

BUDGETS = (256, 512, 1024, 2048, 4096, 16384)


def wide_model(width: int, folder: Path) -> SentenceTransformer:
    """A random 6-layer BERT of ``width`` with all-MiniLM-L6-v2's tokenizer (speed does not depend on weights)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    source = Path(default_model_path())
    config = BertConfig(
        vocab_size=30522, hidden_size=width, num_hidden_layers=6, num_attention_heads=width // 64,
        intermediate_size=4 * width, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    transformer = Transformer(str(folder), max_seq_length=256)
    return SentenceTransformer(modules=[transformer, Pooling(width)], device="cpu")


def pass_overhead_tokens(model: SentenceTransformer, reps: int = 30) -> float:
    """Seconds of a one-row, 8-token pass over seconds per token of 2,048-token passes."""
    tokenized = model.token_batcher.tokenize_unpadded(["word " * 6, "word " * 254])
    small = model.token_batcher.collate(tokenized, np.array([0]))
    large = model.token_batcher.collate(tokenized, np.array([1] * 8))  # 8 rows of 256 tokens

    def seconds(features) -> float:
        with torch.inference_mode():
            model.forward_modules(dict(features), {})
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                model.forward_modules(dict(features), {})
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    return seconds(small) / (seconds(large) / large["attention_mask"].numel()) - 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=None, help="a random BERT of this width instead of MiniLM")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated: " + ", ".join(CORPORA))
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--texts", type=int, default=None, help="at most this many texts per corpus")
    args = parser.parse_args()
    budgets = [int(budget) for budget in args.budgets.split(",")]
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        model = wide_model(args.width, Path(folder)) if args.width else SentenceTransformer(str(default_model_path()))
        width = model.token_batcher.get_embedding_dimension()
        print(f"CPU flags: {cpu_flags()}; {args.threads} threads; width {width}; medians of {args.runs} runs")
        print(f"default CPU budget for this width: {default_max_batch_tokens(torch.device('cpu'), width)} tokens")
        print(f"fixed cost of one pass: {pass_overhead_tokens(model):.0f} tokens\n")
        print("| corpus | " + " | ".join(f"{budget:,}" for budget in budgets) + " |")
        print("|---|" + "---|" * len(budgets))
        for name in args.corpora.split(","):
            texts = CORPORA[name]()[: args.texts]
            rates: dict[int, list[float]] = {budget: [] for budget in budgets}
            for _ in range(args.runs):
                for budget in budgets:
                    plan = EncodePlan(max_batch_tokens=budget, device=model.device)
                    start = time.perf_counter()
                    run(model, texts, plan)
                    rates[budget].append(len(texts) / (time.perf_counter() - start))
            cells = " | ".join(f"{statistics.median(rates[budget]):,.1f}" for budget in budgets)
            print(f"| {name} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
