"""int8 models under the self-check (int8_check): the recipe ``quantize`` takes here, and loading an int8 file.

``model.quantize("int8")`` tries the recipe fastest on this CPU (cpu_features.int8_recipe_for_this_cpu: 7-bit
weights where the int8 kernels add pairs in 16 bits, else 8-bit) and, if its self-check fails there, the 8-bit
recipe, which onnxruntime runs exactly on every CPU; if that fails too the model stays fp32 and the error says why.
A model loaded with an int8 file is checked against the folder's fp32 export (or its fp32 weights on torch); if
the check fails, ``backend="auto"`` runs fp32 instead and logs why, any other backend raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedstack.backends.cpu_features import int8_recipe_for_this_cpu
from embedstack.backends.int8_check import Int8Check, check_int8
from embedstack.backends.onnx import OnnxTransformer, find_onnx_file, int8_input_module
from embedstack.backends.onnx_export import ONNX_FILE
from embedstack.modules.transformer.module import Transformer

logger = logging.getLogger(__name__)

EncodeWith = Callable[[Any], np.ndarray]  # encodes the calibration texts with the given input module
INT8_OPTION = "int8_min_cosine"  # the model_kwargs key of the threshold, when loading an int8 file


def quantized_module(
    transformer: Any,
    encode_with: EncodeWith,
    *,
    calibration_texts: Sequence[str] | None = None,
    min_cosine: float | None = None,
) -> OnnxTransformer:
    """The int8 stand-in for ``transformer`` that passes the self-check, or Int8QualityError."""
    first = int8_recipe_for_this_cpu()
    recipes = [first] if first == "int8" else [first, "int8"]
    for recipe in recipes:
        module = int8_input_module(transformer, recipe, calibration_texts)
        check = check_int8(encode_with, module, transformer, what=f"the {recipe} int8 recipe", min_cosine=min_cosine)
        module.int8_check = check
        if check.passed:
            logger.info("%s", check.summary())
            return module
        logger.warning("%s", check.summary())
    raise check.error(
        "The model stays fp32. Calibrate on texts like the ones you encode (calibration_texts=[...]), accept "
        "less with min_cosine=..., or keep the fp32 model."
    )


def check_loaded_int8(
    modules: Any, encode_with: EncodeWith, *, backend: str, hf_kwargs: dict[str, Any]
) -> Int8Check | None:
    """Check a loaded model whose input module runs an int8 file; on failure fall back (auto) or raise.

    ``modules`` is the model (its first module is replaced by the fp32 one when auto falls back).
    """
    module = modules[0]
    if not isinstance(module, OnnxTransformer) or not module.is_int8 or module.folder is None:
        return None
    model_kwargs = dict(hf_kwargs.get("model_kwargs") or {})
    min_cosine = model_kwargs.pop(INT8_OPTION, None)
    what = Path(str(module.onnx_model)).name
    check = check_int8(encode_with, module, fp32_module(module), what=what, min_cosine=min_cosine)
    module.int8_check = check
    if check.passed:
        logger.info("%s", check.summary())
        return check
    if backend != "auto":
        raise check.error(
            f"Load the fp32 model instead (leave out model_kwargs['file_name']), or accept less with "
            f"model_kwargs={{'{INT8_OPTION}': ...}}; backend='auto' does the former on its own."
        )
    logger.warning("%s; backend='auto' runs the fp32 model instead.", check.summary())
    model_kwargs.pop("file_name", None)
    fallback = Transformer.load(str(module.folder), backend="auto", **{**hf_kwargs, "model_kwargs": model_kwargs})
    fallback.int8_check = check  # type: ignore[assignment]  # what `embedstack info` reports
    modules[0] = fallback
    return check


def fp32_module(module: OnnxTransformer) -> Any:
    """The fp32 backbone of an int8 module's folder: its fp32 ONNX export if it has one, else the torch weights."""
    assert module.folder is not None
    exported = find_onnx_file(module.folder, ONNX_FILE)
    if exported is not None:
        settings = Transformer.load_config(str(module.folder))
        return OnnxTransformer.from_folder(module.folder, exported, module.provider, settings)
    return Transformer.load(str(module.folder))
