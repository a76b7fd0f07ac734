"""The SPLADE pass without the (batch, tokens, vocab) logits.

The MLM stops before its vocabulary projection, and SpladePooling projects the real tokens in chunks while it pools
(``SpladePooling.pool_decoded``).

Used for a stack of exactly a "fill-mask" Transformer (or the deprecated MLMTransformer, which is one) and a
SpladePooling, in inference. The first pass of each
model is also run the ordinary way and compared; if the two disagree (a head that changes its logits after the
projection), that model keeps the ordinary pass.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from embedstack.modules.legacy.mlm_transformer import MLMTransformer
from embedstack.modules.splade_pooling import SpladePooling
from embedstack.modules.transformer.mlm_head import decoder_and_inputs
from embedstack.modules.transformer.module import Transformer

logger = logging.getLogger(__name__)

Forward = Callable[..., dict[str, Any]]

# Whether the fused pass of a model (keyed by its Transformer) matched its ordinary pass on the first batch.
_CHECKED: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


def fused_splade_forward(model: nn.Module) -> Forward | None:
    """A forward for ``model`` that pools without building the logits.

    None when ``model`` is not a plain SPLADE stack: the engine then calls ``model`` itself.
    """
    modules = list(model.children())
    if len(modules) != 2 or model.training:
        return None
    transformer, pooling = modules
    if not (
        isinstance(transformer, Transformer)
        and type(transformer) in (Transformer, MLMTransformer)  # another subclass may change what forward does
        and getattr(transformer, "transformer_task", None) == "fill-mask"
        and isinstance(pooling, SpladePooling)
        and _CHECKED.get(transformer, True)
    ):
        return None
    if _customized(model, transformer, pooling):
        return None

    def forward(features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        checked = _CHECKED.get(transformer)
        if checked is False:  # found different on an earlier pass (of this call or another)
            return model(features, **kwargs)
        reference = None
        if checked is None:  # the first pass: also the ordinary way, to compare
            reference = model(dict(features), **kwargs)["sentence_embedding"]
        result = _fused_pass(transformer, pooling, features, kwargs)
        if reference is not None:
            agrees = result is not None and _same(result["sentence_embedding"], reference)
            _CHECKED[transformer] = agrees
            if not agrees:
                logger.info("This MLM's head changes its logits after the projection: pooling the ordinary way.")
                return {**features, "sentence_embedding": reference}
        if result is None:  # the head has no separate projection to stop before
            _CHECKED[transformer] = False
            return model(features, **kwargs)
        return result

    return forward


def _customized(model: nn.Module, transformer: nn.Module, pooling: nn.Module) -> bool:
    """Whether hooks or a forward replaced on an instance expect the ordinary pass (they then get it)."""
    if any(m._forward_hooks or m._forward_pre_hooks for m in (model, transformer, pooling)):
        return True
    replaced = {"forward", "forward_modules"} & set(vars(model))
    return bool(replaced) or any("forward" in vars(m) for m in (transformer, pooling))


def _fused_pass(
    transformer: Transformer, pooling: SpladePooling, features: dict[str, Any], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    out, hidden, decoder = decoder_and_inputs(transformer.model, transformer, features, **kwargs)
    if hidden is None or decoder is None or hidden.dim() != 3:
        return None
    out.pop(transformer.module_output_name, None)  # the logits' zero stand-in
    out["sentence_embedding"] = pooling.pool_decoded(hidden, out.get("attention_mask"), decoder.weight, decoder.bias)
    return out


def _same(ours: torch.Tensor, reference: torch.Tensor) -> bool:
    """Equal up to rounding: the fused pass adds the bias after the max, so half precision rounds once more."""
    scale = float(reference.abs().max()) if reference.numel() else 0.0
    eps = torch.finfo(reference.dtype).eps if reference.is_floating_point() else 0.0
    rtol = max(1e-4, 4 * eps)
    return ours.shape == reference.shape and bool(
        torch.allclose(ours, reference, rtol=rtol, atol=max(1e-5, 4 * eps) * max(scale, 1))
    )
