"""``embedstack encode`` with a SparseEncoder: each text's top tokens printed, or its indices and values written.

.jsonl gets one ``{"text", "indices", "values"}`` per line (``"tokens"`` too with --decode), each row's non-zero
vocabulary dimensions in ascending order with their weights; a folder as ``--output`` gets Parquet shards with
``indices`` (list<int32>) and ``values`` (list<float32>) columns (encode_shards.py). The options that shape dense
vectors (--normalize, --truncate-dim, --precision, --long-inputs) are refused, as is .npy, which holds dense arrays.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from embedstack.cli.inputs import iter_texts
from embedstack.cli.model_options import ENCODE_KINDS, load_model, model_class
from embedstack.cli.writers import SHOWN_ROWS, clip, write_stream
from embedstack.encode_io import windows
from embedstack.engine.sparse_rows import csr_parts
from embedstack.sparse_encoder import SparseEncoder

SHOWN_TOKENS = 8  # of each printed text
WINDOW_ROWS = 4096  # texts encoded per call when writing .jsonl (memory stays bounded)
PROGRESS_THRESHOLD = 256  # texts; show a progress bar above this
# The dense-only options: (attribute, flag, its default).
_DENSE_ONLY = (
    ("normalize", "--normalize", False),
    ("truncate_dim", "--truncate-dim", None),
    ("precision", "--precision", "float32"),
    ("long_inputs", "--long-inputs", "truncate"),
)
_SPARSE_ONLY = (("max_active_dims", "--max-active-dims", None), ("decode", "--decode", False))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack encode`` for sparse models."""
    group = parser.add_argument_group("Sparse models (a SparseEncoder as --model)")
    group.add_argument(
        "--max-active-dims", type=int, help="keep each vector's K largest weights (default: the model's)"
    )
    group.add_argument("--decode", action="store_true", help="with .jsonl output: each index's token too")


def is_sparse_model(args: argparse.Namespace) -> bool:
    """Whether --model is a SparseEncoder (else a SentenceTransformer), with the options checked for its kind.

    Raises:
        ValueError: The model is of another kind, or an option is set that this kind has no use for.
    """
    sparse = model_class(args, ENCODE_KINDS)[0] is SparseEncoder
    name = args.model or "the default model"
    for attribute, flag, default in _SPARSE_ONLY if not sparse else _DENSE_ONLY:
        if getattr(args, attribute) != default:
            kind, use = ("SentenceTransformer", "sparse models") if not sparse else ("SparseEncoder", "dense vectors")
            raise ValueError(f"{flag} is for {use}, and {name} is a {kind}. Leave {flag} out.")
    if sparse and args.max_active_dims is not None and args.max_active_dims < 1:
        raise ValueError(
            f"--max-active-dims must be a positive integer (weights kept per text), got {args.max_active_dims}."
        )
    return sparse


def encode_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``SparseEncoder.encode`` that ``embedstack encode``'s options set."""
    return dict(
        batch_size=args.batch_size,
        prompt_name=args.prompt_name,
        prompt=args.prompt,
        max_active_dims=args.max_active_dims,
    )


def shard_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`encode_options` for Parquet shards, after refusing what they cannot hold."""
    if args.decode:
        raise ValueError(
            "--decode adds tokens to .jsonl lines; Parquet shards hold the indices and values only. Leave --decode "
            "out (SparseEncoder.decode or the tokenizer turns indices into tokens), or write .jsonl."
        )
    return encode_options(args)


def run(args: argparse.Namespace, source: Path | None, texts: list[str]) -> int:
    """Print the top tokens of each text, or write .jsonl; ``source`` is the input file (else ``texts``)."""
    if args.output is not None and args.output.suffix != ".jsonl":
        raise ValueError(
            f"--output {args.output}: a .npy file holds dense arrays, and {args.model} is a SparseEncoder, whose "
            "vectors are sparse (vocabulary-sized, mostly zero). Write .jsonl (indices and values per text) or give "
            "a folder for Parquet shards."
        )
    model = load_model(args, kind=SparseEncoder)
    options = encode_options(args)
    if args.output is None:
        print_sparse(model, texts if source is None else list(iter_texts(source, args.field)), options)
        return 0
    count = sum(1 for _ in iter_texts(source, args.field)) if source is not None else len(texts)
    records = sparse_records(model, _texts(source, args.field, texts), options, decode=args.decode)
    if count > PROGRESS_THRESHOLD and not args.no_progress:
        records = tqdm(records, total=count, desc="Encoding", unit="text")
    write_stream(args.output, _texts(source, args.field, texts), records, count, None)
    print(f"Wrote the sparse vectors of {count} texts to {args.output}", file=sys.stderr)
    return 0


def _texts(source: Path | None, field: str, texts: list[str]) -> Iterable[str]:
    return iter_texts(source, field) if source is not None else iter(texts)


def sparse_records(model: Any, texts: Iterable[str], options: dict[str, Any], *, decode: bool) -> Iterator[dict]:
    """``{"indices", "values"}`` (and ``"tokens"`` with ``decode``) per text, encoded a window of texts at a time."""
    for window in windows(texts, WINDOW_ROWS):
        bounds, indices, values = csr_parts(model.encode(window, show_progress_bar=False, **options))
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            record: dict[str, Any] = {"indices": indices[start:stop].tolist(), "values": values[start:stop].tolist()}
            if decode:
                record["tokens"] = model.tokenizer.convert_ids_to_tokens(record["indices"])
            yield record


def print_sparse(model: Any, texts: list[str], options: dict[str, Any]) -> None:
    """Print the first texts with their active dimensions and their largest weights as tokens."""
    shown = texts[:SHOWN_ROWS]
    embeddings = model.encode(shown, show_progress_bar=False, **options)  # (shown, vocab) sparse
    bounds = csr_parts(embeddings)[0]
    for text, decoded, active in zip(shown, model.decode(embeddings, top_k=SHOWN_TOKENS), bounds.diff().tolist()):
        tokens = " ".join(f"{token}:{weight:.3f}" for token, weight in decoded)
        print(f"{clip(text, 40):<40}  {active:>5} active  [{tokens}{' ...' if active > SHOWN_TOKENS else ''}]")
    if len(texts) > len(shown):
        print(f"... and {len(texts) - len(shown)} more (write them all with -o FILE.jsonl)")
