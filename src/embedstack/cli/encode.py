"""``embedstack encode``: print vectors, or write them to .npy / .jsonl (streamed for large files).

A folder as ``--output`` (or ``--ray``) writes Parquet shards instead (encode_shards.py). A SparseEncoder as
``--model`` gets indices and values instead of dense vectors (encode_sparse.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from embedstack.chunking import DEPRECATED_LONG_INPUT_MODES, LONG_INPUT_MODES, LongInputs
from embedstack.chunking.options import DEFAULT_OVERLAP
from embedstack.cli import encode_shards, encode_sparse
from embedstack.cli.inputs import iter_texts
from embedstack.cli.model_options import add_model_arguments, load_model
from embedstack.cli.writers import print_vectors, write_chunks, write_stream

SAMPLE_SENTENCES = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
]
PROGRESS_THRESHOLD = 256  # inputs; show a progress bar above this


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack encode``."""
    parser.add_argument("texts", nargs="*", help="texts to encode (default: three sample sentences)")
    parser.add_argument(
        "--input", "-i", type=Path, nargs="+",
        help="a .txt (one text per line), .jsonl or .parquet file; several, a folder or a quoted glob ('docs/*.jsonl') "
        "for Parquet shards",
    )  # fmt: skip
    parser.add_argument("--field", "--column", dest="field", default="text", help="the .jsonl field or Parquet column")
    parser.add_argument("--output", "-o", type=Path, help="a .npy or .jsonl file, or a folder for Parquet shards")
    parser.add_argument("--batch-size", type=int, help="cap on rows per pass (default: the token budget decides)")
    parser.add_argument("--normalize", action="store_true", help="L2-normalize the vectors")
    parser.add_argument("--prompt-name", help="a prompt saved with the model, e.g. query")
    parser.add_argument("--prompt", help="a prompt string to prepend")
    parser.add_argument("--precision", default="float32", choices=["float32", "int8", "uint8", "binary", "ubinary"])
    parser.add_argument("--truncate-dim", type=int)
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.add_argument("--cache", type=Path, help="a persistent embedding cache file (SQLite), created if missing")
    parser.add_argument(
        "--long-inputs", choices=[*LONG_INPUT_MODES, *DEPRECATED_LONG_INPUT_MODES], default="truncate",
        help="texts longer than the model's window: truncate (default), pool (windows pooled into one vector), "
        "split or late (one vector per chunk, with its character span; --output must be .jsonl); chunk and chunks "
        "are the old names of pool and split",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-overlap", type=int, default=DEFAULT_OVERLAP, help="tokens neighbouring chunk windows share"
    )
    parser.add_argument("--chunk-pooling", choices=["mean", "max"], default="mean", help="how 'pool' pools")
    add_model_arguments(parser)
    encode_sparse.add_arguments(parser)
    encode_shards.add_arguments(parser)


def encode_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``encode`` that ``embedstack encode``'s options set."""
    return dict(
        batch_size=args.batch_size,
        normalize_embeddings=args.normalize,
        prompt_name=args.prompt_name,
        prompt=args.prompt,
        truncate_dim=args.truncate_dim,
        long_inputs=LongInputs(args.long_inputs, overlap=args.chunk_overlap, pooling=args.chunk_pooling),
    )


def run(args: argparse.Namespace) -> int:
    """Encode the texts, to the output the options name."""
    if args.input and args.texts:
        raise ValueError("Give texts as arguments or with --input, not both.")
    sparse = encode_sparse.is_sparse_model(args)
    if args.output is not None and (args.output.is_dir() or not args.output.suffix) or args.ray:
        return encode_shards.run(args, encode_sparse.shard_options(args) if sparse else encode_options(args))
    source = _one_file(args)
    if sparse:
        return encode_sparse.run(args, source, args.texts or SAMPLE_SENTENCES)
    return _encode(args, source)


def _one_file(args: argparse.Namespace) -> Path | None:
    """The input file of an output that is no folder (None: texts on the command line)."""
    if args.output is not None and args.output.suffix not in (".npy", ".jsonl"):
        raise ValueError(f"--output {args.output} must end in .npy or .jsonl, or name a folder for Parquet shards.")
    inputs = args.input or []
    if len(inputs) > 1 or any(path.is_dir() or path.suffix == ".parquet" or "*" in str(path) for path in inputs):
        raise ValueError("Several files, a folder or Parquet input are written as Parquet shards: give -o FOLDER.")
    return inputs[0] if inputs else None


def _encode(args: argparse.Namespace, source: Path | None) -> int:
    """Dense vectors of the texts or of ``source``: printed, or written to .npy or .jsonl."""
    options = encode_options(args)
    per_chunk = options["long_inputs"].per_chunk
    if per_chunk and args.output is not None and args.output.suffix != ".jsonl":
        raise ValueError(f"--long-inputs {args.long_inputs} gives several vectors per text; write them to .jsonl.")
    if source is not None and args.output is not None and args.precision == "float32":
        return _stream_file(args, source, options)
    texts = list(iter_texts(source, args.field)) if source is not None else (args.texts or SAMPLE_SENTENCES)
    model = load_model(args)
    progress = len(texts) > PROGRESS_THRESHOLD and not args.no_progress
    embeddings = model.encode(texts, precision=args.precision, show_progress_bar=progress, **options)
    if per_chunk:
        write_chunks(texts, embeddings, args.output)
    elif args.output is not None:
        write_stream(args.output, texts, iter(embeddings), len(texts), embeddings.shape[1])
        print(f"Wrote {len(texts)} vectors of dimension {embeddings.shape[1]} to {args.output}", file=sys.stderr)
    else:
        print_vectors(texts, embeddings, model)
    return 0


def _stream_file(args: argparse.Namespace, source: Path, options: dict[str, Any]) -> int:
    """A file of texts to a file of float32 vectors, in bounded memory (``encode_iter``)."""
    count = sum(1 for _ in iter_texts(source, args.field))  # also validates the whole file first
    model = load_model(args)
    vectors = model.encode_iter(iter_texts(source, args.field), **options)
    if count > PROGRESS_THRESHOLD and not args.no_progress:
        vectors = tqdm(vectors, total=count, desc="Encoding", unit="text")
    write_stream(args.output, iter_texts(source, args.field), vectors, count, model.get_embedding_dimension())
    print(f"Wrote {count} vectors to {args.output}", file=sys.stderr)
    return 0
