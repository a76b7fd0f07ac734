"""The CLI's Ray job: a corpus of files into Parquet shards, on a pool of model actors, resumable.

The driver plans the work as pieces of ``piece_rows`` corpus rows (the corpus's last piece may be shorter), each
inside one shard. Ray tasks (asking for no CPU, so that actors can have every core)
read the pieces, the actors embed each piece as one batch, and the driver receives the rows in order and writes
the shards itself (atomically, as the single-process job does). A piece is the same batch on every run, so a
rerun that skips complete shards writes the others exactly as an uninterrupted run would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data

from embedstack.corpus import Source, count_rows, read_range
from embedstack.ray.dataset import embed_dataset
from embedstack.shards import JobReport, ShardWriter, by_shard, job_spec, prepare_folder, skip_complete_shard

logger = logging.getLogger(__name__)


def plan_pieces(total: int, shard_rows: int, piece_rows: int, skip: set[int]) -> list[dict[str, int]]:
    """The pieces (``start``, ``stop`` row numbers) of every shard not in ``skip``, in row order."""
    pieces = []
    for shard in range(-(-total // shard_rows)):
        if shard in skip:
            continue
        end = min((shard + 1) * shard_rows, total)
        for start in range(shard * shard_rows, end, piece_rows):
            pieces.append({"start": start, "stop": min(start + piece_rows, end)})
    return pieces


def read_pieces(batch: pa.Table, sources: Sequence[Source], offsets: Sequence[int]) -> pa.Table:
    """Ray task: the corpus rows of the pieces in ``batch``, with their row numbers."""
    tables = []
    for start, stop in zip(batch.column("start").to_pylist(), batch.column("stop").to_pylist()):
        table = read_range(sources, offsets, start, stop)
        tables.append(table.add_column(0, "row", pa.array(np.arange(start, stop, dtype=np.int64))))
    return pa.concat_tables(tables)


def connect(address: str | None) -> float:
    """Join (``address``) or start a Ray cluster unless this process is already connected; seconds taken."""
    if ray.is_initialized():
        return 0.0
    start = time.perf_counter()
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - start


def encode_to_shards_on_ray(
    model: str,
    sources: Sequence[Source],
    folder: Path,
    *,
    shard_rows: int = 65536,
    piece_rows: int = 1024,
    precision: str = "float32",
    options: dict | None = None,
    actors: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float = 0.0,
    load_options: dict[str, Any] | None = None,
    progress: Any = None,
    counts: Sequence[int] | None = None,
) -> JobReport:
    """Encode a corpus into Parquet shards on the connected Ray cluster (see :func:`connect`).

    Args:
        model: Model folder (on every node, e.g. a shared file system) or Hub id.
        sources: The corpus files, readable from every node.
        folder: The output folder, on the driver's machine.
        shard_rows: Rows per shard.
        piece_rows: Rows per batch handed to an actor.
        precision: "float32", "binary" or "ubinary".
        options: Keyword arguments of ``encode`` (batch_size, normalize_embeddings, prompt, ...), as for the
            single-process job; they reach each actor's ``encode`` unchanged.
        actors: Actor pool size (default: one per CPU, or per GPU for GPU actors).
        num_cpus: CPUs per actor (default 1).
        num_gpus: GPUs per actor.
        load_options: backend, device, trust_remote_code, model_kwargs.
        progress: A tqdm-like bar to update with each shard's rows, or None.
        counts: The rows of each source, when the caller has counted them already (else they are counted here).

    Returns:
        What was done.
    """
    if not isinstance(piece_rows, int) or piece_rows < 1 or shard_rows % piece_rows:
        raise ValueError(
            f"shard_rows ({shard_rows}) must be a multiple of piece_rows ({piece_rows}), the rows per batch: then "
            "every batch is one whole piece of one shard, the same batch on every run, and a resumed job writes the "
            "same files as an uninterrupted one."
        )
    options = dict(options or {})
    spec = job_spec(sources, model=model, shard_rows=shard_rows, precision=precision, options=options)
    done = prepare_folder(folder, spec)
    counts = list(counts) if counts is not None else [count_rows(source) for source in sources]
    offsets = [int(value) for value in np.cumsum([0, *counts])[:-1]]
    total = sum(counts)
    report, start = JobReport(), time.perf_counter()
    for index in sorted(done):
        skip_complete_shard(folder, index, min(shard_rows, total - index * shard_rows), report, progress)
    pieces = plan_pieces(total, shard_rows, piece_rows, done)
    if not pieces:
        return report
    context = ray.data.DataContext.get_current()
    preserve, bars = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order = True  # rows reach the driver in corpus order
    context.enable_progress_bars = False  # the caller's bar counts rows written
    try:
        items = ray.data.from_items(pieces, override_num_blocks=len(pieces))
        ds: ray.data.Dataset = items.map_batches(
            read_pieces,  # type: ignore[arg-type]  # the fn_kwargs fill its other parameters
            fn_kwargs={"sources": list(sources), "offsets": offsets},
            batch_size=1,
            batch_format="pyarrow",
            num_cpus=0,
        )
        ds = embed_dataset(
            ds, model, "text", "embedding", batch_size=piece_rows, precision=precision, actors=actors,
            num_cpus=num_cpus, num_gpus=num_gpus, reserve_cpus=0.0, encode_options=options, **(load_options or {}),
        )  # fmt: skip
        _write(ds.iter_batches(batch_size=None, batch_format="pyarrow"), folder, shard_rows, total, report, progress)
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = preserve, bars
    report.seconds = time.perf_counter() - start
    return report


def _write(tables: Iterable[pa.Table], folder: Path, shard_rows: int, total: int, report: JobReport, bar: Any) -> None:
    """Write the rows coming back from the actors into their shards, each committed once complete."""
    writer: ShardWriter | None = None
    try:
        for index, parts in by_shard(tables, shard_rows):
            writer = ShardWriter(folder, index)
            expected = index * shard_rows
            for part in parts:
                rows = part.column("row").to_numpy()
                if rows[0] != expected + writer.rows or np.any(np.diff(rows) != 1):
                    raise RuntimeError(f"Ray returned rows out of order in shard {index}; its file is not written.")
                writer.write(part)
            if writer.rows != min(shard_rows, total - expected):
                raise RuntimeError(f"Shard {index} got {writer.rows} rows from Ray; its file is not written.")
            writer.commit()
            report.rows, report.written, writer = report.rows + writer.rows, report.written + 1, None
            if bar is not None:
                bar.update(min(shard_rows, total - expected))
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
