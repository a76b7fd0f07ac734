"""The paths ``encode`` takes, one small function each.

Worker processes, one vector per chunk, the embedding cache, one pass per modality, and the output's precision
and type.

``EncodeMixin.encode`` (encoding.py) reads its arguments and picks the path; each path here gets a model (an
:class:`~embedstack.stack.ModuleStack` that can encode) and an :class:`~embedstack.engine.EncodePlan`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from embedstack.cache import EmbeddingStore, cached_run
from embedstack.chunking import ChunkEmbeddings, LongInputs, encode_long
from embedstack.encode_io import convert_output
from embedstack.engine import EncodePlan, run
from embedstack.engine.processes import Pool, run_on_processes
from embedstack.engine.runner import EncodeResult, EncodeStats
from embedstack.inputs import BatchKinds, Modality
from embedstack.quantization import Precision, quantize_embeddings
from embedstack.stack import ModuleStack

logger = logging.getLogger(__name__)


def on_processes(model: Any, inputs: list[Any], pool: Pool | None, devices: Any, options: dict[str, Any]) -> Any:
    """Encode on worker processes: ``pool``'s, or one per device of ``devices``, started and stopped here.

    ``options`` are encode's keyword arguments for the workers, plus ``chunk_size``.
    """
    options = dict(options)
    chunk_size = options.pop("chunk_size", None)
    long = LongInputs.of(options.get("long_inputs"))
    if long.per_chunk:
        raise ValueError(
            f"long_inputs={long.mode!r} gives one vector per chunk; such modes run in this process. Leave out pool "
            "and device lists, or pick a mode with one vector per input."
        )
    return run_on_processes(model, inputs, pool, devices, chunk_size, options)


def per_chunk(model: ModuleStack, inputs: list[Any], long: LongInputs, plan: EncodePlan, precision: Precision) -> Any:
    """One vector per chunk of each input: a ChunkEmbeddings per input, quantized over the whole call."""
    chunked = encode_long(model, inputs, long, plan)
    if precision != "float32" and chunked:
        flat = quantize_embeddings(np.concatenate([item.embeddings for item in chunked]), precision=precision)
        bounds = np.cumsum([0] + [len(item) for item in chunked])
        chunked = [ChunkEmbeddings(flat[a:b], item.spans) for item, a, b in zip(chunked, bounds, bounds[1:])]
    return chunked


def computed(
    model: ModuleStack,
    inputs: list[Any],
    plan: EncodePlan,
    kinds: BatchKinds | None,
    long: LongInputs,
    cache: EmbeddingStore | None,
) -> EncodeResult:
    """One output per input (long inputs as ``long`` says), through ``cache`` when there is one."""

    def compute(items: list[Any]) -> EncodeResult:
        if long.pooled:  # overlapping windows pooled into one vector
            outputs = encode_long(model, items, long, plan)
            return EncodeResult(outputs, np.zeros(len(items), dtype=bool), EncodeStats(inputs=len(items)))
        return by_modality(model, items, plan, kinds if items is inputs else model.classify_inputs(items))

    if cache is None or not inputs:
        return compute(inputs)
    return cached_run(model, cache, inputs, plan, long.cache_key(), compute)


def by_modality(model: ModuleStack, inputs: list[Any], plan: EncodePlan, kinds: BatchKinds | None) -> EncodeResult:
    """Run ``inputs`` whose modalities ``kinds`` holds.

    One pass, or one per modality when the model takes each kind but not a mix (a CLIP model takes texts and
    images, not both in one batch).
    """
    if kinds is None or kinds.groups is None:
        return run(model, inputs, for_modality(model, plan, kinds.modality if kinds else None))
    truncated = np.zeros(len(inputs), dtype=bool)
    outputs: list[Any] = [None] * len(inputs)
    stats = EncodeStats()
    for modality, positions in kinds.groups.items():
        result = run(model, [inputs[i] for i in positions], for_modality(model, plan, modality))
        truncated[positions] = result.truncated
        for position, output in zip(positions, result.outputs):
            outputs[position] = output
        stats.inputs += result.stats.inputs
    if plan.output_value == "sentence_embedding":
        return EncodeResult(torch.stack(outputs), truncated, stats)
    return EncodeResult(outputs, truncated, stats)


def for_modality(model: ModuleStack, plan: EncodePlan, modality: Modality | None) -> EncodePlan:
    """``plan`` telling the input module the modality already decided, when its preprocess takes one."""
    preprocess = getattr(model.input_module, "preprocess", None)
    if modality is None or preprocess is None or not takes_keyword(preprocess, "modality"):
        return plan
    return dataclasses.replace(plan, preprocess_kwargs={**plan.preprocess_kwargs, "modality": modality})


def takes_keyword(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function`` (a bound method too) has a parameter ``name``; read once per function."""
    return name in _parameters(getattr(function, "__func__", function))


@lru_cache(maxsize=256)
def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def finished(
    model: Any, result: EncodeResult, precision: Precision, *, to_tensor: bool, to_numpy: bool
) -> torch.Tensor | np.ndarray | list[Any]:
    """The output of encode: truncation reported, quantized to ``precision``, converted as asked."""
    count = len(result.truncated)
    report_truncation(model, int(result.truncated.sum()), count)
    embeddings: torch.Tensor | np.ndarray | list[Any] = result.outputs
    if count and precision != "float32":
        embeddings = quantize_embeddings(embeddings, precision=precision)
    return convert_output(embeddings, to_tensor, to_numpy, model.device)


def report_truncation(model: Any, count: int, total: int) -> None:
    """Warn that ``count`` of ``total`` inputs were cut at the model's window."""
    if count:
        logger.warning(
            "%d of %d inputs were longer than max_seq_length=%s tokens and were truncated. "
            "model.truncated(inputs) tells which; raise model.max_seq_length if the model allows it.",
            count,
            total,
            model.max_seq_length,
        )
