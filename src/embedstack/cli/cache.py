"""``embedstack cache info|clear PATH``: what an embedding cache file holds, or empty it."""

from __future__ import annotations

import argparse
from pathlib import Path

from embedstack.cache import EmbeddingStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack cache``."""
    parser.add_argument("action", choices=["info", "clear"])
    parser.add_argument("path", type=Path, help="the cache file")


def run(args: argparse.Namespace) -> int:
    """Describe or empty the cache file."""
    if not args.path.is_file():
        raise ValueError(f"{args.path} is not a file; an embedding cache is created by encode --cache PATH.")
    store = EmbeddingStore(args.path)
    if args.action == "clear":
        print(f"Deleted {store.clear()} vectors from {args.path}")
        return 0
    info = store.info()
    print(f"Cache: {info.path}")
    print(f"Vectors: {info.vectors} ({info.vector_bytes / 1e6:.1f} MB of vectors, file {info.file_bytes / 1e6:.1f} MB)")
    print(f"Model and settings groups: {info.settings}")
    print(f"Size cap: {info.max_bytes / 1e6:.0f} MB (least recently used vectors are evicted past it)")
    return 0
