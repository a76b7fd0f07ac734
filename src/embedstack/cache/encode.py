"""Encoding through the cache: hits come from the store as stored, misses go through the engine and are stored.

What is cached: the sentence embedding of each text (or text pair), exactly as the engine returned it, before
``precision`` quantization (int8/uint8 calibrate on the whole batch, so they are applied to hits and misses
together afterwards, as without a cache); a sparse encoder's weights ("sparse_embedding"), row by row as indices
and values (sparse_rows.py). Not cached: other inputs (images, audio, messages: the call runs as without a cache),
other ``output_value``s, and the per-chunk outputs of ``long_inputs`` "split" and "late".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from embedstack.cache.keys import input_bytes, input_key, settings_key
from embedstack.cache.sparse_rows import dump_row, load_row, split_rows, stack_rows
from embedstack.cache.store import EmbeddingStore
from embedstack.engine.runner import EncodePlan, EncodeResult, EncodeStats

logger = logging.getLogger(__name__)

_DTYPES = {str(dtype): dtype for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)}


@dataclass(frozen=True)
class _Rows:
    """How the rows of one ``output_value`` are split from the engine's tensor, stored, read back and stacked."""

    split: Callable[[torch.Tensor], list[Any]]
    dump: Callable[[Any], tuple[str, bytes]]
    load: Callable[[str, bytes], Any]
    stack: Callable[[list[Any]], torch.Tensor]


def encode_settings(model: Any, plan: EncodePlan, long_inputs: dict[str, Any]) -> dict[str, Any]:
    """Every setting besides the model's weights that changes a vector (the cache key's second part)."""
    settings = {
        "prompt": plan.prompt,
        "normalize_embeddings": plan.normalize_embeddings,
        "truncate_dim": plan.truncate_dim,
        "output_value": plan.output_value,
        "preprocess_kwargs": plan.preprocess_kwargs,
        "module_kwargs": plan.module_kwargs,
        "max_seq_length": model.max_seq_length,
        "long_inputs": long_inputs,
        "backend": model.get_backend() if callable(getattr(model, "get_backend", None)) else None,
        "dtype": str(getattr(model, "dtype", None)),
        "device": plan.device.type if plan.device is not None else None,
        "quantized": getattr(model, "_quantized", None),
    }
    if plan.output_value == "sparse_embedding":  # only there: the keys of dense vectors stay as they were
        settings["max_active_dims"] = plan.max_active_dims
    return settings


def cached_run(
    model: Any,
    store: EmbeddingStore,
    inputs: list[Any],
    plan: EncodePlan,
    long_inputs: dict[str, Any],
    compute: Callable[[list[Any]], EncodeResult],
) -> EncodeResult:
    """``compute(inputs)``, with the vectors already in ``store`` read from it instead of computed."""
    data = [input_bytes(item) for item in inputs]
    codec = _ROWS.get(plan.output_value or "")
    if codec is None or any(d is None for d in data):  # before the model fingerprint
        logger.debug("Embedding cache bypassed: inputs or outputs that are not cached")
        return compute(inputs)
    settings = settings_key(model, encode_settings(model, plan, long_inputs))
    if settings is None:
        logger.debug("Embedding cache bypassed: settings that are not cached")
        return compute(inputs)
    keys = [input_key(settings, d) for d in data if d is not None]
    found = store.get_many(list(dict.fromkeys(keys)))
    missing: dict[bytes, int] = {}  # key -> first position of an input not in the cache
    for position, key in enumerate(keys):
        if key not in found and key not in missing:
            missing[key] = position
    rows: dict[bytes, Any] = {key: codec.load(*stored) for key, stored in found.items()}
    truncated = np.zeros(len(inputs), dtype=bool)
    stats = EncodeStats(inputs=len(inputs))
    if plan.progress is not None and found:
        plan.progress.update(sum(1 for key in keys if key in found))
    if missing:
        result = compute([inputs[position] for position in missing.values()])
        computed = codec.split(result.embeddings.detach().to("cpu"))
        store.put_many((key, settings, *codec.dump(row)) for key, row in zip(missing, computed))
        rows.update(zip(missing, computed))
        flags = dict(zip(missing, result.truncated))
        truncated[:] = [bool(flags.get(key, False)) for key in keys]
        stats = result.stats
        stats.inputs = len(inputs)
    embeddings = codec.stack([rows[key] for key in keys])  # (N, dim)
    if not plan.to_cpu and plan.device is not None:
        embeddings = embeddings.to(plan.device)
    return EncodeResult(embeddings, truncated, stats)


def _dense_dump(row: torch.Tensor) -> tuple[str, bytes]:
    return str(row.dtype), row.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _tensor(dtype: str, value: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(value), dtype=torch.uint8).view(_DTYPES[dtype])


_ROWS = {
    "sentence_embedding": _Rows(list, _dense_dump, _tensor, torch.stack),
    "sparse_embedding": _Rows(split_rows, dump_row, load_row, stack_rows),
}
