"""Parquet shards of vectors: the output folder of a batch job, written so that a crash loses nothing finished.

The folder holds ``part-00000.parquet``, ``part-00001.parquet``, ... and ``_embedstack_job.json`` (what the job
is: inputs, column, model, options). Shard k holds corpus rows ``k * shard_rows`` up to the next shard's first
row: the row number (``row``), the id column when the job names one, and the vector (``embedding``, a
fixed-size list of float32, or of int8/uint8 packed bits for binary precisions; a sparse encoder's vectors as
``indices``, a list of int32 vocabulary dimensions in ascending order, and ``values``, a list of their float32
weights). A shard is written under a
hidden temporary name and renamed into place once complete, so it is either complete or absent; rerunning the
job skips the shards already there, and since each shard is encoded on its own, from its first row, a resumed
job writes the same files as one that never stopped.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embedstack.corpus import Source, count_rows, iter_tables
from embedstack.engine.sparse_rows import csr_parts
from embedstack.errors import JobFolderError
from embedstack.quantization import quantize_embeddings

MANIFEST = "_embedstack_job.json"
ROW_GROUP_ROWS = 4096
SHARD_PRECISIONS = ("float32", "binary", "ubinary")  # int8/uint8 would need ranges from the whole corpus
SPARSE_COLUMNS = ("indices", "values")  # a sparse encoder's vectors, instead of "embedding"


@dataclass
class JobReport:
    """What a batch job did: rows encoded, shards written and skipped (already complete), seconds taken."""

    rows: int = 0
    written: int = 0
    skipped: int = 0
    seconds: float = 0.0


def shard_name(index: int) -> str:
    """The file name of shard ``index``."""
    return f"part-{index:05d}.parquet"


def job_spec(sources: Sequence[Source], *, model: str, shard_rows: int, precision: str, options: dict) -> dict:
    """What identifies a job; a folder holding another job's shards is refused rather than mixed."""
    if precision not in SHARD_PRECISIONS:
        raise ValueError(
            f"precision {precision!r} is not available for Parquet shards: int8/uint8 need value ranges over the "
            f"whole corpus, which no shard sees. Use one of {list(SHARD_PRECISIONS)}, or write float32 and apply "
            "quantize_embeddings(..., calibration_embeddings=...) afterwards."
        )
    if not isinstance(shard_rows, int) or shard_rows < 1:
        raise ValueError(f"shard_rows must be a positive integer, got {shard_rows!r}.")
    first = sources[0]
    return {
        "inputs": [str(Path(source.path).resolve()) for source in sources],
        "column": first.column,
        "id_column": first.id_column,
        "model": model,
        "shard_rows": shard_rows,
        "precision": precision,
        "options": {key: _recorded(options[key]) for key in sorted(options)},
    }


def _recorded(value: Any) -> Any:
    """An encode option as the job record holds it (settings objects such as LongInputs by their key)."""
    return value.cache_key() if callable(getattr(value, "cache_key", None)) else value


def prepare_folder(folder: Path, spec: dict) -> set[int]:
    """Make ``folder`` the job's output folder; returns the shards already complete.

    A new folder gets the manifest; a folder of the same job keeps its shards (their leftover temporary files
    are removed); anything else is refused.
    """
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / MANIFEST
    if manifest.exists():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        if old != spec:
            changed = sorted(key for key in {*old, *spec} if old.get(key) != spec.get(key))
            raise JobFolderError(
                f"{folder} holds the shards of another job ({MANIFEST} differs in: {', '.join(changed)}). Resuming "
                "would mix the two. Write to a new folder, or delete this one to start over."
            )
    else:
        present = sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))
        if present:
            raise JobFolderError(
                f"{folder} is not empty ({', '.join(present[:3])}, ...) and is no embedstack job folder. "
                "Give an empty or new folder as --output."
            )
        temporary = folder / f".{MANIFEST}.partial"
        temporary.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, manifest)
    for leftover in folder.glob(".part-*.parquet.partial"):
        leftover.unlink()
    return {int(path.name[5:10]) for path in folder.glob("part-[0-9][0-9][0-9][0-9][0-9].parquet")}


def vector_column(vectors: np.ndarray, precision: str) -> pa.FixedSizeListArray:
    """(N, D) float32 vectors as a fixed-size list column, quantized to ``precision`` (binary ones: packed bits)."""
    if precision != "float32":
        vectors = quantize_embeddings(vectors, precision=precision)  # type: ignore[arg-type]
    vectors = np.ascontiguousarray(vectors)  # (rows, dim)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def sparse_columns(matrix: Any) -> list[pa.ListArray]:
    """A (rows, vocab) sparse COO torch tensor as the columns named by SPARSE_COLUMNS.

    Each row's non-zero dimensions (list<int32>, ascending) and their weights (list<float32>).
    """
    if not getattr(matrix, "is_sparse", False):
        raise TypeError(
            f"sparse_columns takes a sparse COO tensor (what SparseEncoder.encode gives), got {matrix!r:.80}."
        )
    bounds, indices, values = csr_parts(matrix)
    offsets = pa.array(bounds.numpy().astype(np.int32))  # (rows + 1,)
    return [
        pa.ListArray.from_arrays(offsets, pa.array(indices.numpy().astype(np.int32))),
        pa.ListArray.from_arrays(offsets, pa.array(values.float().numpy(), type=pa.float32())),
    ]


def is_sparse_encoder(model: Any) -> bool:
    """Whether ``model`` gives sparse vectors (a SparseEncoder; this layer knows the model kinds by name only)."""
    return getattr(model, "model_type", None) == "SparseEncoder"


def check_sparse_precision(sparse: bool, precision: str) -> None:
    """Refuse a quantized precision for a sparse encoder's weights, which shards hold as float32."""
    if sparse and precision != "float32":
        raise ValueError(
            f"precision {precision!r} quantizes dense vectors; a SparseEncoder's shards hold its non-zero weights as "
            "float32 (indices and values). Leave precision at 'float32'."
        )


class ShardWriter:
    """Writes one shard under a temporary name; :meth:`commit` renames it into place."""

    def __init__(self, folder: Path, index: int) -> None:
        self.path = folder / shard_name(index)
        self.temporary = folder / f".{self.path.name}.partial"
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        """Append rows (``row``, the id column if any, ``embedding``)."""
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.temporary, table.schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows

    def commit(self) -> None:
        """Close the file, flush it to disk and rename it into place."""
        if self._writer is None:
            raise ValueError(f"{self.path.name} has no rows; an empty shard is never written.")
        self._writer.close()
        with open(self.temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(self.temporary, self.path)

    def abort(self) -> None:
        """Drop the unfinished shard."""
        if self._writer is not None:
            self._writer.close()
        self.temporary.unlink(missing_ok=True)


def numbered_tables(sources: Sequence[Source]) -> Iterator[pa.Table]:
    """The corpus as tables with its row numbers (``row``, int64) first."""
    row = 0
    for source in sources:
        for table in iter_tables(source):
            rows = pa.array(np.arange(row, row + table.num_rows, dtype=np.int64))
            row += table.num_rows
            yield table.add_column(0, "row", rows)


def by_shard(tables: Iterable[pa.Table], shard_rows: int) -> Iterator[tuple[int, Iterator[pa.Table]]]:
    """(shard index, its tables): numbered tables cut at shard boundaries and grouped, lazily."""

    def pieces() -> Iterator[tuple[int, pa.Table]]:
        for table in tables:
            rows = table.column("row").to_numpy()
            while table.num_rows:
                shard = int(rows[0]) // shard_rows
                take = min(table.num_rows, (shard + 1) * shard_rows - int(rows[0]))
                yield shard, table.slice(0, take)
                table, rows = table.slice(take), rows[take:]

    for shard, group in itertools.groupby(pieces(), key=lambda item: item[0]):
        yield shard, (table for _, table in group)


def skip_complete_shard(folder: Path, index: int, rows: int, report: JobReport, progress: Any) -> None:
    """Count shard ``index``, already complete, as skipped, once it is checked to hold the corpus's ``rows`` for it.

    What both jobs (this process's and the Ray one) do with a shard a previous run wrote.
    """
    held = pq.read_metadata(folder / shard_name(index)).num_rows
    if held != rows:
        raise JobFolderError(
            f"{folder / shard_name(index)} holds {held} rows, but the corpus now has {rows} for that shard: the "
            "input changed since the shard was written. Write to a new folder, or delete this one to start over."
        )
    report.skipped += 1
    if progress is not None:
        progress.update(rows)


def encode_shard(model: Any, tables: Iterable[pa.Table], writer: ShardWriter, precision: str, options: dict) -> None:
    """Stream one shard's rows through ``model.encode_iter`` into ``writer`` (memory bounded by the window)."""
    pending: collections.deque[pa.Table] = collections.deque()

    def texts() -> Iterator[str]:
        for table in tables:
            if table.num_rows:
                pending.append(table.drop_columns(["text"]))  # before its texts: encode_iter reads ahead
                yield from table.column("text").to_pylist()

    vectors = model.encode_iter(texts(), **options)
    for first in vectors:
        rows = pending.popleft()
        chunk = np.stack([first, *itertools.islice(vectors, rows.num_rows - 1)])  # (rows, dim)
        writer.write(rows.append_column("embedding", vector_column(chunk, precision)))


def encode_sparse_shard(model: Any, tables: Iterable[pa.Table], writer: ShardWriter, options: dict) -> None:
    """One shard's rows through a SparseEncoder's ``encode``, a table (at most READ_ROWS rows) at a time."""
    for table in tables:
        if table.num_rows:
            matrix = model.encode(table.column("text").to_pylist(), show_progress_bar=False, **options)
            indices, values = sparse_columns(matrix)
            rows = table.drop_columns(["text"]).append_column(SPARSE_COLUMNS[0], indices)
            writer.write(rows.append_column(SPARSE_COLUMNS[1], values))


def encode_to_shards(
    model: Any,
    sources: Sequence[Source],
    folder: Path,
    *,
    model_name: str,
    shard_rows: int = 65536,
    precision: str = "float32",
    options: dict | None = None,
    progress: Any = None,
) -> JobReport:
    """Encode a corpus into Parquet shards in one process, skipping the shards already complete.

    Args:
        model: The SentenceTransformer to run, or a SparseEncoder (``indices`` and ``values`` columns, float32 only).
        sources: The corpus files (see :func:`embedstack.corpus.expand_inputs`).
        folder: The output folder.
        model_name: How the manifest names the model (its folder or Hub id).
        shard_rows: Rows per shard.
        precision: "float32", "binary" or "ubinary".
        options: Keyword arguments of ``encode_iter`` (batch_size, normalize_embeddings, prompt, ...); of
            ``encode`` for a SparseEncoder (batch_size, prompt, max_active_dims, ...).
        progress: A tqdm-like bar to update with each shard's rows, or None.

    Returns:
        What was done.
    """
    options = dict(options or {})
    sparse = is_sparse_encoder(model)
    check_sparse_precision(sparse, precision)
    spec = job_spec(sources, model=model_name, shard_rows=shard_rows, precision=precision, options=options)
    done = prepare_folder(folder, spec)
    report, start = JobReport(), time.perf_counter()
    for index, tables in by_shard(numbered_tables(sources), shard_rows):
        if index in done:
            skip_complete_shard(folder, index, sum(table.num_rows for table in tables), report, progress)
            continue
        writer = ShardWriter(folder, index)
        try:
            if sparse:
                encode_sparse_shard(model, tables, writer, options)
            else:
                encode_shard(model, tables, writer, precision, options)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        report.rows += writer.rows
        report.written += 1
        if progress is not None:
            progress.update(writer.rows)
    report.seconds = time.perf_counter() - start
    return report


def row_counts(sources: Sequence[Source]) -> list[int] | None:
    """Rows of each source, or None when a source is not a regular file (a pipe can be read only once)."""
    if not all(Path(source.path).is_file() for source in sources):
        return None
    return [count_rows(source) for source in sources]
