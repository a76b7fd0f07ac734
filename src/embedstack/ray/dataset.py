"""``embed_dataset``: a column of texts in a ``ray.data.Dataset`` becomes a column of vectors, on model actors.

Each actor loads the model once and runs embedstack's engine on every batch it gets (dedupe, token-budget
batches sorted by length). Ray Data restarts an actor that dies and retries its batch, so no row is lost or
doubled.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray
import ray.data
import torch

from embedstack.errors import ClusterResourcesError
from embedstack.kinds import model_kind
from embedstack.model import SentenceTransformer
from embedstack.shards import SHARD_PRECISIONS, SPARSE_COLUMNS, check_sparse_precision, sparse_columns, vector_column
from embedstack.sparse_encoder import SparseEncoder

logger = logging.getLogger(__name__)

# Tests set this to a file path: the first actor to take a batch creates the file and exits at once, as a crashed
# worker would; later actors (the restarted one too) find the file and carry on.
FAIL_ONCE_VARIABLE = "EMBEDSTACK_RAY_FAIL_ONCE"


class Embedder:
    """The callable class of ``map_batches``: one model per actor, one engine run per batch.

    Args:
        model: Model folder or Hub id, loaded in the actor as the kind its folder saves: a SentenceTransformer, or
            a SparseEncoder, whose vectors become the columns ``indices`` and ``values`` (float32 only).
        column: The column of texts.
        output_column: The column of (dense) vectors to add.
        precision: "float32", "binary" or "ubinary".
        threads: Torch threads on CPU (the actor's CPUs).
        keep_text: Keep the text column in the output.
        load_options: Keyword arguments of ``SentenceTransformer`` (device, backend, trust_remote_code, model_kwargs).
        encode_options: Keyword arguments of ``encode`` (batch_size, normalize_embeddings, prompt, ...).
    """

    def __init__(
        self,
        model: str,
        *,
        column: str,
        output_column: str,
        precision: str,
        threads: int,
        keep_text: bool,
        load_options: dict[str, Any],
        encode_options: dict[str, Any],
    ) -> None:
        if load_options.get("device", "cpu") == "cpu":
            torch.set_num_threads(threads)
        self.model = _load(model, load_options)
        self.sparse = isinstance(self.model, SparseEncoder)
        check_sparse_precision(self.sparse, precision)
        self.column, self.output_column, self.precision = column, output_column, precision
        self.keep_text, self.encode_options = keep_text, encode_options

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Add the vectors of ``batch[column]`` as ``output_column``."""
        _fail_once_for_tests()
        if self.column not in batch.column_names:
            raise KeyError(f"The dataset has no column {self.column!r} (columns: {', '.join(batch.column_names)}).")
        texts = batch.column(self.column)
        if texts.null_count:
            raise ValueError(f"Column {self.column!r} has {texts.null_count} null values in a batch; fill them in.")
        if not self.keep_text:
            batch = batch.drop_columns([self.column])
        if self.sparse:  # (rows, vocab) sparse weights: their indices and values
            weights = self.model.encode(texts.to_pylist(), show_progress_bar=False, **self.encode_options)
            indices, values = sparse_columns(weights)
            return batch.append_column(SPARSE_COLUMNS[0], indices).append_column(SPARSE_COLUMNS[1], values)
        if len(texts):
            vectors = self.model.encode(texts.to_pylist(), show_progress_bar=False, **self.encode_options)
        else:
            vectors = np.zeros((0, self.model.get_embedding_dimension() or 0), dtype=np.float32)  # (rows, dim)
        return batch.append_column(self.output_column, vector_column(vectors, self.precision))


def _load(model: str, load_options: dict[str, Any]) -> SentenceTransformer | SparseEncoder:
    """The model in ``model``, as the kind its folder saves (an embedding model or a sparse encoder)."""
    cls, folder = model_kind(model, load_options.get("backend", "torch"))
    if cls is not SentenceTransformer and cls is not SparseEncoder:
        raise ValueError(
            f"{model} is a {cls.__name__}, which gives no vectors to embed a dataset with. Give a SentenceTransformer "
            "or a SparseEncoder folder."
        )
    return cls(str(folder), **load_options)


def _fail_once_for_tests() -> None:
    marker = os.environ.get(FAIL_ONCE_VARIABLE)
    if not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    logger.warning("%s is set: this actor exits now, once, to test recovery", FAIL_ONCE_VARIABLE)
    os._exit(1)


def plan_actors(
    cluster: dict[str, float],
    *,
    actors: int | None,
    num_cpus: float | None,
    num_gpus: float,
    reserve_cpus: float,
) -> tuple[int, float]:
    """The actor count and CPUs per actor, checked against the cluster's resources.

    Default: 1 CPU per actor; one actor per GPU for GPU actors, else as many as fit once ``reserve_cpus`` are
    left for Ray Data's other tasks (reading, writing). Ray waits forever for CPUs that never come free (ray
    issue #44687), so an impossible request fails here, with what to change.
    """
    cpus, gpus = float(cluster.get("CPU", 0.0)), float(cluster.get("GPU", 0.0))
    num_cpus = 1.0 if num_cpus is None else float(num_cpus)
    if num_cpus < 0 or num_gpus < 0 or reserve_cpus < 0:
        raise ValueError(
            f"num_cpus, num_gpus and reserve_cpus must be >= 0, got {num_cpus}, {num_gpus}, {reserve_cpus}."
        )
    if actors is None:
        if num_gpus:
            actors = int(gpus // num_gpus)
        else:
            actors = int((cpus - reserve_cpus) // num_cpus) if num_cpus else 1
        actors = max(1, actors)
    if not isinstance(actors, int) or actors < 1:
        raise ValueError(f"actors must be a positive integer, got {actors!r}.")
    if num_gpus and actors * num_gpus > gpus + 1e-9:
        raise ClusterResourcesError(
            f"{actors} actors x {num_gpus} GPU need {actors * num_gpus:g} GPUs, but the cluster has {gpus:g}. "
            "Ray would wait for them forever. Use fewer actors, or add GPU nodes (ray start --num-gpus ...)."
        )
    if actors * num_cpus + reserve_cpus > cpus + 1e-9:
        raise ClusterResourcesError(
            f"{actors} actors x {num_cpus:g} CPU take {actors * num_cpus:g} of the cluster's {cpus:g} CPUs and leave "
            f"fewer than the {reserve_cpus:g} that Ray Data's read and write tasks need: they would never run and the "
            "job would hang (ray issue #44687). Use fewer actors or fewer CPUs per actor, add nodes, or pass "
            "reserve_cpus=0 if your dataset's reads and writes ask for no CPU (ray_remote_args={'num_cpus': 0})."
        )
    return actors, num_cpus


def embed_dataset(
    ds: ray.data.Dataset,
    model: str | os.PathLike[str],
    column: str = "text",
    output_column: str = "embedding",
    *,
    actors: int | None = None,
    num_cpus: float | None = None,
    num_gpus: float = 0.0,
    batch_size: int | None = 1024,
    precision: str = "float32",
    keep_text: bool = False,
    reserve_cpus: float = 1.0,
    max_restarts: int = 3,
    device: str | None = None,
    backend: str = "auto",
    trust_remote_code: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    ray_remote_args: dict[str, Any] | None = None,
    encode_options: Mapping[str, Any] | None = None,
    **encode_kwargs: Any,
) -> ray.data.Dataset:
    """Embed ``ds[column]`` on a pool of model actors; the other columns (ids) come along.

    Args:
        ds: The dataset, e.g. ``ray.data.read_parquet("s3://bucket/corpus/")``.
        model: Model folder or Hub id; each actor loads it once (a Hub id from its node's cache, or downloaded).
        column: The column of texts.
        output_column: The column of vectors to add: a fixed-size list of float32 (binary precisions: packed
            bits, int8/uint8). A SparseEncoder model adds ``indices`` (list<int32>) and ``values`` (list<float32>)
            instead, each row's non-zero vocabulary dimensions and their weights.
        actors: Actor pool size (default: one per GPU for GPU actors, else as many as fit, see
            :func:`plan_actors`).
        num_cpus: CPUs per actor (default 1); its torch threads.
        num_gpus: GPUs per actor; the model then runs on the actor's GPU.
        batch_size: Rows per batch handed to an actor (Ray Data's ``batch_size``; None: each block whole); the
            engine batches by tokens inside it. Not encode's ``batch_size``: that one goes in ``encode_options``.
        precision: "float32", "binary" or "ubinary".
        keep_text: Keep the text column in the output (default: dropped, the vectors stand beside the ids).
        reserve_cpus: CPUs left free for Ray Data's read and write tasks.
        max_restarts: How often a dead actor is restarted and its batch retried.
        device: Override the device ("cpu", "cuda").
        backend: The model backend ("auto", "torch", "native", "onnx").
        trust_remote_code: Allow code from the model folder to run.
        model_kwargs: ``SentenceTransformer``'s model_kwargs, e.g. ``{"file_name": "model_qint8_avx512_vnni.onnx"}``
            with ``backend="onnx"``.
        ray_remote_args: More Ray options for the actors (e.g. ``{"accelerator_type": "A100"}``, a runtime_env).
        encode_options: Keyword arguments of ``encode``, passed to each actor's ``encode`` unchanged
            (``{"batch_size": 32, "normalize_embeddings": True, ...}``; ``batch_size`` here is encode's cap on rows
            per forward pass).
        **encode_kwargs: More keyword arguments of ``encode`` (normalize_embeddings, prompt_name,
            max_batch_tokens, ...), added to ``encode_options``. ``encode_batch_size`` is a deprecated spelling of
            ``encode_options={"batch_size": ...}``.

    Returns:
        A lazy dataset; write it with ``write_parquet`` or iterate it.

    Example:
        >>> import ray  # doctest: +SKIP
        >>> ds = ray.data.from_items([{"id": i, "text": f"text {i}"} for i in range(100)])  # doctest: +SKIP
        >>> embed_dataset(ds, tiny_bert_path, actors=1).take(1)[0]["embedding"].shape  # doctest: +SKIP
        (32,)
    """
    if precision not in SHARD_PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {list(SHARD_PRECISIONS)} (int8 needs corpus ranges).")
    if isinstance(model, (str, os.PathLike)) and Path(model).exists():
        model = str(Path(model).resolve())  # actors may run in another working directory
    actors, num_cpus = plan_actors(
        ray.cluster_resources(), actors=actors, num_cpus=num_cpus, num_gpus=num_gpus, reserve_cpus=reserve_cpus
    )
    options = {**(encode_options or {}), **encode_kwargs}
    if "encode_batch_size" in options:
        warnings.warn(
            "embed_dataset(encode_batch_size=...) is deprecated; pass encode_options={'batch_size': ...} (encode's "
            "batch_size; embed_dataset's own batch_size is the rows per actor batch).",
            FutureWarning,
            stacklevel=2,
        )
        options["batch_size"] = options.pop("encode_batch_size")
    load_options: dict[str, Any] = {"device": device or ("cuda" if num_gpus else "cpu"), "backend": backend}
    if trust_remote_code:
        load_options["trust_remote_code"] = True
    if model_kwargs:
        load_options["model_kwargs"] = dict(model_kwargs)
    remote = {"max_restarts": max_restarts, "max_task_retries": max_restarts, **(ray_remote_args or {})}
    if num_gpus:
        remote["num_gpus"] = num_gpus
    constructor = dict(
        model=str(model),
        column=column,
        output_column=output_column,
        precision=precision,
        threads=max(1, math.floor(num_cpus)),
        keep_text=keep_text,
        load_options=load_options,
        encode_options=options,
        batch_size=batch_size,
    )
    logger.info("Embedding with %d actors x %g CPU, %g GPU", actors, num_cpus, num_gpus)
    with warnings.catch_warnings():
        # Ray 2.60 deprecates extra remote arguments such as max_restarts (removal announced for 2.64) without a
        # named replacement yet; the extra pins ray, so the warning only repeats what is known.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return _map(ds, actors, num_cpus, remote, constructor)


def _map(ds: ray.data.Dataset, actors: int, num_cpus: float, remote: dict, constructor: dict) -> ray.data.Dataset:
    return ds.map_batches(
        Embedder,
        fn_constructor_kwargs={key: value for key, value in constructor.items() if key != "batch_size"},
        batch_size=constructor["batch_size"],
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=num_cpus,
        **remote,
    )
