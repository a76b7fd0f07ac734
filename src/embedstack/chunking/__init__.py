"""Long inputs: truncate (the default), pool windows into one vector, split into one vector per chunk, or late chunking.

``SentenceTransformer.encode(texts, long_inputs=...)`` and ``encode_iter`` reach this package through
:func:`encode_long`; the options are a :class:`LongInputs` (or just its mode as a string).
"""

from __future__ import annotations

from typing import Any

import torch

from embedstack.chunking.chunk import encode_pooled, encode_split
from embedstack.chunking.late import encode_late
from embedstack.chunking.options import (
    DEPRECATED_LONG_INPUT_MODES,
    LONG_INPUT_MODES,
    ChunkEmbeddings,
    ChunkPooling,
    LongInputMode,
    LongInputs,
    flatten_chunks,
)
from embedstack.engine.runner import EncodePlan
from embedstack.modules.normalize import Normalize

__all__ = [
    "DEPRECATED_LONG_INPUT_MODES",
    "LONG_INPUT_MODES",
    "ChunkEmbeddings",
    "ChunkPooling",
    "LongInputMode",
    "LongInputs",
    "encode_long",
    "flatten_chunks",
    "outputs_normalized",
]


def outputs_normalized(model: Any, plan: EncodePlan) -> bool:
    """Whether the vectors come out L2-normalized: the call asks for it, or the model ends with Normalize."""
    modules = list(model.children())
    return plan.normalize_embeddings or (bool(modules) and isinstance(modules[-1], Normalize))


def encode_long(
    model: Any, inputs: list[Any], options: LongInputs, plan: EncodePlan
) -> torch.Tensor | list[ChunkEmbeddings]:
    """Encode ``inputs`` under a long-input mode other than "truncate".

    Returns:
        An (N, dim) tensor for "pool", else one :class:`ChunkEmbeddings` per input ("split", "late").
    """
    if plan.output_value != "sentence_embedding":
        raise ValueError(f"long_inputs={options.mode!r} gives sentence embeddings; output_value must be left as is.")
    bad = next((i for i, item in enumerate(inputs) if not isinstance(item, str)), None)
    if bad is not None:
        raise ValueError(
            f"long_inputs={options.mode!r} takes texts; input {bad} is a {type(inputs[bad]).__name__}. "
            "Encode other inputs with long_inputs='truncate'."
        )
    if not inputs:
        return torch.empty(0) if options.pooled else []
    if options.pooled:
        return encode_pooled(model, inputs, options, plan, normalized=outputs_normalized(model, plan))
    if options.mode == "split":
        return encode_split(model, inputs, options, plan)
    return encode_late(model, inputs, options, plan)
