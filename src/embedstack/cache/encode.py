"""Encoding through the cache: hits come from the store as stored, misses go through the engine and are stored.

What is cached: the sentence embedding of each text (or text pair), exactly as the engine returned it, before
``precision`` quantization (int8/uint8 calibrate on the whole batch, so they are applied to hits and misses
together afterwards, as without a cache). Not cached: other inputs (images, audio, messages: the call runs as
without a cache), other ``output_value``s, and the per-chunk outputs of ``long_inputs`` "split" and "late".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from embedstack.cache.keys import input_bytes, input_key, settings_key
from embedstack.cache.store import EmbeddingStore
from embedstack.engine.runner import EncodePlan, EncodeResult, EncodeStats

logger = logging.getLogger(__name__)

_DTYPES = {str(dtype): dtype for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)}


def encode_settings(model: Any, plan: EncodePlan, long_inputs: dict[str, Any]) -> dict[str, Any]:
    """Every setting besides the model's weights that changes a vector (the cache key's second part)."""
    return {
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
    if plan.output_value != "sentence_embedding" or any(d is None for d in data):  # before the model fingerprint
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
    rows: dict[bytes, torch.Tensor] = {key: _tensor(*stored) for key, stored in found.items()}
    truncated = np.zeros(len(inputs), dtype=bool)
    stats = EncodeStats(inputs=len(inputs))
    if plan.progress is not None and found:
        plan.progress.update(sum(1 for key in keys if key in found))
    if missing:
        result = compute([inputs[position] for position in missing.values()])
        computed = result.embeddings.detach().to("cpu")
        store.put_many((key, settings, str(row.dtype), _bytes(row)) for key, row in zip(missing, computed))
        rows.update(zip(missing, computed))
        flags = dict(zip(missing, result.truncated))
        truncated[:] = [bool(flags.get(key, False)) for key in keys]
        stats = result.stats
        stats.inputs = len(inputs)
    embeddings = torch.stack([rows[key] for key in keys])  # (N, dim)
    if not plan.to_cpu and plan.device is not None:
        embeddings = embeddings.to(plan.device)
    return EncodeResult(embeddings, truncated, stats)


def _bytes(row: torch.Tensor) -> bytes:
    return row.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _tensor(dtype: str, value: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(value), dtype=torch.uint8).view(_DTYPES[dtype])
