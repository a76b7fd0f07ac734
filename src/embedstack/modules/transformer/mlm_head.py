"""A masked language model's forward pass that stops before its vocabulary projection (the decoder).

SPLADE pooling needs, per input, the maximum (or sum) over tokens of ``relu(hidden @ W.T + b)``. Computing that from
the head's input (``hidden``, a few hundred floats per token) in chunks never builds the (batch, tokens, vocab)
logits that the model's own forward returns: 250 MB for 2,048 tokens of a 30,522-token vocabulary.
"""

from __future__ import annotations

import threading
from typing import Any

import torch
from torch import nn


def decoder_and_inputs(
    model: nn.Module, call: Any, *args: Any, **kwargs: Any
) -> tuple[Any, torch.Tensor | None, nn.Linear | None]:
    """Run ``call(*args, **kwargs)``, a forward pass of the MLM ``model``, without its vocabulary projection.

    Returns ``(result, hidden, decoder)``: ``hidden`` is what the output-embeddings Linear (``decoder``) received, and
    the logits inside ``result`` are a zero-size stand-in (an expanded zero, no memory) of the logits' shape. When
    the model has no such Linear, or its forward did not call it (a head that multiplies by the weight itself),
    ``hidden`` and ``decoder`` are None and ``result`` is the ordinary output. Only the calling thread's pass is
    changed: another thread running the same model meanwhile gets its real logits.
    """
    get_decoder = getattr(model, "get_output_embeddings", None)
    decoder = get_decoder() if callable(get_decoder) else None
    if not isinstance(decoder, nn.Linear):
        return call(*args, **kwargs), None, None
    owner = threading.get_ident()
    captured: list[torch.Tensor] = []

    def skip_projection(module: nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if threading.get_ident() != owner:
            return None
        captured.append(inputs[0])
        if len(captured) > 1 or inputs[0].dim() < 2:
            return None  # not the one projection of a plain MLM head: computed as usual, then redone below
        return (inputs[0][..., :0, :],)  # no rows: the projection costs nothing

    def stand_in_logits(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != owner or len(captured) != 1 or captured[0].dim() < 2:
            return None
        shape = (*captured[0].shape[:-1], decoder.out_features)
        return output.new_zeros(()).expand(shape)

    handles = [decoder.register_forward_pre_hook(skip_projection), decoder.register_forward_hook(stand_in_logits)]
    try:
        result = call(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    if not captured:
        return result, None, None
    if len(captured) > 1 or captured[0].dim() < 2:  # a stand-in may have reached the result: the ordinary pass
        return call(*args, **kwargs), None, None
    return result, captured[0], decoder
