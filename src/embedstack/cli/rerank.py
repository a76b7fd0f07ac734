"""``embedstack rerank``: score documents against a query with a cross-encoder and print the best, or write them.

embedstack rerank --model cross-encoder-folder --query "How many people live in Berlin?" -i docs.txt --top-k 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from embedstack.cli.inputs import iter_texts
from embedstack.cli.model_options import add_model_arguments, load_model
from embedstack.cross_encoder import CrossEncoder

SHOWN_CHARACTERS = 80  # of each document in the printed table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack rerank``."""
    parser.add_argument("documents", nargs="*", help="documents to rank (or --input)")
    parser.add_argument("--query", "-q", required=True, help="the query the documents are scored against")
    parser.add_argument("--input", "-i", type=Path, help="a .txt (one document per line) or .jsonl file")
    parser.add_argument("--field", default="text", help="the .jsonl field holding each document")
    parser.add_argument("--top-k", "-k", type=int, default=10, help="how many of the best to show (0: all)")
    parser.add_argument("--raw-scores", action="store_true", help="logits, without the model's activation")
    parser.add_argument("--batch-size", type=int, help="cap on pairs per pass (default: the token budget decides)")
    parser.add_argument("--output", "-o", type=Path, help="write the ranking as .jsonl ({index, score, text})")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Rank the documents; print a table (or write .jsonl with --output)."""
    documents = _documents(args)
    if args.top_k < 0:
        raise ValueError(f"--top-k must be 0 (all) or more, got {args.top_k}.")
    model: CrossEncoder = load_model(args, kind=CrossEncoder)
    options: dict[str, Any] = {"batch_size": args.batch_size, "return_documents": True}
    if args.raw_scores:
        import torch

        options["activation_fn"] = torch.nn.Identity()
    ranking = model.rank(args.query, documents, top_k=args.top_k or None, **options)
    if args.output is not None:
        _write_jsonl(args.output, ranking)
        print(f"Wrote {len(ranking)} ranked documents to {args.output}", file=sys.stderr)
        return 0
    width = len(str(len(documents)))
    print(f"{'rank':>4}  {'score':>9}  {'index':>{max(width, 5)}}  text")
    for rank, hit in enumerate(ranking, start=1):
        text = hit["text"].replace("\n", " ")
        shown = text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"
        print(f"{rank:>4}  {hit['score']:>9.4f}  {hit['corpus_id']:>{max(width, 5)}}  {shown}")
    return 0


def _documents(args: argparse.Namespace) -> list[str]:
    if args.input is not None and args.documents:
        raise ValueError("Give the documents as arguments or with --input, not both.")
    documents = list(iter_texts(args.input, args.field)) if args.input is not None else list(args.documents)
    if not documents:
        raise ValueError("No documents to rank: pass them as arguments or with --input FILE.")
    return documents


def _write_jsonl(path: Path, ranking: list[dict[str, Any]]) -> None:
    """The ranking as .jsonl, written whole or not at all."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for hit in ranking:
                record = {"index": hit["corpus_id"], "score": hit["score"], "text": hit["text"]}
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
