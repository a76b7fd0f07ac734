"""What the commands write: vectors streamed to .npy or .jsonl (whole or not at all), and the printed tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from embedstack.chunking import ChunkEmbeddings

SHOWN_ROWS = 10  # vectors printed (and compared) at most


def write_stream(path: Path, texts: Iterable[str], vectors: Iterable[Any], count: int, dimension: int | None) -> None:
    """Write vectors as they come, to .npy or .jsonl (``{"text", "embedding"}`` per line; a dict's fields instead).

    The file appears only when complete: rows go to a hidden partial file that is renamed at the end.
    """
    temporary = path.with_name(f".{path.name}.partial")
    try:
        if path.suffix == ".npy":
            _write_npy(temporary, vectors, count, dimension)
        else:
            with open(temporary, "w", encoding="utf-8") as handle:
                for text, vector in zip(texts, vectors):
                    handle.write(json.dumps(_record(text, vector)) + "\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_npy(path: Path, vectors: Iterable[Any], count: int, dimension: int | None) -> None:
    array = None
    for row, vector in enumerate(vectors):
        if array is None:
            array = np.lib.format.open_memmap(path, mode="w+", dtype=vector.dtype, shape=(count, len(vector)))
        array[row] = vector
    if array is None:
        np.save(path, np.zeros((0, dimension or 0), dtype=np.float32))
    else:
        array.flush()
        del array


def _record(text: str, vector: Any) -> dict[str, Any]:
    """One .jsonl line: the text and its vector, its chunks (span and vector each), or its sparse vector's fields."""
    if isinstance(vector, dict):  # a sparse vector: indices and values (and tokens), see encode_sparse.py
        return {"text": text, **vector}
    if isinstance(vector, ChunkEmbeddings):
        chunks = [{"start": start, "end": end, "embedding": row.tolist()} for row, (start, end) in vector]
        return {"text": text, "chunks": chunks}
    return {"text": text, "embedding": vector.tolist()}


def write_chunks(texts: list[str], chunked: list[ChunkEmbeddings], output: Path | None) -> None:
    """Write (to .jsonl) or print the per-chunk vectors of the one-vector-per-chunk long-input modes."""
    if output is not None:
        write_stream(output, texts, iter(chunked), len(texts), None)
        print(f"Wrote the chunk vectors of {len(texts)} texts to {output}", file=sys.stderr)
        return
    for text, chunks in zip(texts, chunked):
        print(f"{clip(text, 40):<40}  {len(chunks)} chunks")
        for vector, (start, end) in chunks:
            head = " ".join(f"{value:+.4f}" for value in vector[:4])
            print(f"  [{start}:{end}] {clip(text[start:end], 30):<30} [{head} ...]")


def print_vectors(texts: list[str], embeddings: Any, model: Any) -> None:
    """Print the first vectors and, for float vectors, their similarity matrix."""
    shown = min(len(texts), SHOWN_ROWS)
    for text, vector in zip(texts[:shown], embeddings[:shown]):
        head = " ".join(f"{value:+.4f}" for value in vector[:6])
        print(f"{clip(text, 40):<40}  [{head} ...]  dim={len(vector)}")
    if len(texts) > shown:
        print(f"... and {len(texts) - shown} more")
    if 2 <= shown and embeddings.dtype.kind == "f":
        scores = model.similarity(embeddings[:shown], embeddings[:shown])
        print(f"\nSimilarity ({model.similarity_fn_name}):")
        print(" " * 42 + "".join(f"{i:>8}" for i in range(shown)))
        for i in range(shown):
            row = "".join(f"{float(scores[i, j]):8.4f}" for j in range(shown))
            print(f"{i:>2} {clip(texts[i], 38):<38} {row}")


def clip(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "..."."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."
