"""Registers the native and onnx backends (and the auto chooser) with ``Transformer.load``.

Called once by the model base (base/model.py); ``import embedstack.backends`` alone stays light.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from embedstack.backends.native import native_input_module
from embedstack.backends.onnx import auto_onnx_input_module, onnx_input_module
from embedstack.backends.select import choose_backend
from embedstack.modules.transformer.backend_registry import register_auto_chooser, register_backend
from embedstack.modules.transformer.config import FEATURES


def _native(folder: Any, hf_kwargs: dict[str, Any], *, task: str = FEATURES) -> Any:
    # Hugging Face kwargs (dtype, attention implementation, ...) only mean something to transformers.
    return None if any(hf_kwargs.values()) else native_input_module(folder, task)


@cache
def register_backends() -> None:
    """Make ``backend="onnx"``, ``"native"`` and ``"auto"`` available to ``Transformer.load`` (once)."""
    register_backend(
        "onnx",
        onnx_input_module,
        runs="text Transformer folders whose backbone (or cross-encoder classifier, or sparse MLM) exports to ONNX",
        auto=auto_onnx_input_module,
        tasks=("feature-extraction", "sequence-classification", "fill-mask"),
    )
    register_backend(
        "native",
        _native,
        runs="plain BERT folders (with tokenizer.json and model.safetensors) with no model/processor/config kwargs: "
        "embedding backbones, and cross-encoders' BertForSequenceClassification",
        auto=True,
        tasks=("feature-extraction", "sequence-classification"),
    )
    register_auto_chooser(choose_backend)
