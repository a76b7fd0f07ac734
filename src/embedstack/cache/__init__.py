"""A persistent embedding cache on SQLite: ``SentenceTransformer(path, cache="embeddings.sqlite")``.

Keys cover the model's fingerprint (weights, module configs, tokenizer, backend), the encode settings that change a
vector and the input's bytes, so a changed model or setting never meets an old vector. See store.py for the file,
encode.py for what is cached.
"""

from __future__ import annotations

import os

from embedstack.cache.encode import cached_run, encode_settings
from embedstack.cache.fingerprint import model_fingerprint
from embedstack.cache.store import DEFAULT_MAX_BYTES, CacheInfo, EmbeddingStore

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CacheInfo",
    "EmbeddingStore",
    "cached_run",
    "encode_settings",
    "model_fingerprint",
    "open_cache",
]


def open_cache(cache: str | os.PathLike[str] | EmbeddingStore | None) -> EmbeddingStore | None:
    """The store for a ``cache=`` argument: a path (opened lazily, on first use), a store, or None."""
    if cache is None or isinstance(cache, EmbeddingStore):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return EmbeddingStore(cache)
    raise TypeError(f"cache must be a file path or an EmbeddingStore, got {type(cache).__name__}.")
