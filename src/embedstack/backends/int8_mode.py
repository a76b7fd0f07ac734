"""int8 models under the self-check (int8_check): the recipe ``quantize`` takes here, and loading an int8 file.

``model.quantize("int8")`` tries the recipe fastest on this CPU (cpu_features.int8_recipe_for_this_cpu: 7-bit
weights where the int8 kernels add pairs in 16 bits, else 8-bit) and, if its self-check fails there, the 8-bit
recipe, which onnxruntime runs exactly on every CPU; if that fails too the model stays fp32 and the error says why.
A model loaded with an int8 file is checked against the folder's fp32 export (or its fp32 weights on torch); if
the check fails, ``backend="auto"`` runs fp32 instead and logs why, any other backend raises. Embedding models are
checked on their vectors, cross-encoders on their scores (int8_check states both rules).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedstack.backends.cpu_features import int8_recipe_for_this_cpu
from embedstack.backends.int8_check import CheckKind, Int8Check, Int8Thresholds, check_int8, check_kind
from embedstack.backends.onnx import OnnxTransformer, find_onnx_file, int8_input_module
from embedstack.backends.onnx_export import ONNX_FILE
from embedstack.modules.transformer.module import Transformer

logger = logging.getLogger(__name__)

EncodeWith = Callable[[Any], np.ndarray]  # encodes the calibration texts with the given input module
INT8_OPTION = "int8_min_cosine"  # the model_kwargs key of the threshold, when loading an int8 file
# The model_kwargs keys of every threshold (Int8Thresholds' fields), when loading an int8 file.
INT8_OPTIONS = {
    INT8_OPTION: "min_cosine",
    "int8_min_rank_agreement": "min_rank_agreement",
    "int8_max_score_diff": "max_score_diff",
}


def quantized_module(
    transformer: Any,
    encode_with: EncodeWith,
    *,
    calibration_texts: Sequence[str] | None = None,
    min_cosine: float | None = None,
    kind: CheckKind = "vectors",
    thresholds: Int8Thresholds | None = None,
) -> OnnxTransformer:
    """The int8 stand-in for ``transformer`` that passes the self-check of ``kind``, or Int8QualityError.

    ``thresholds`` (or ``min_cosine`` alone) overrides the self-check's defaults.
    """
    limits = thresholds or Int8Thresholds(min_cosine=min_cosine)
    first = int8_recipe_for_this_cpu()
    recipes = [first] if first == "int8" else [first, "int8"]
    for recipe in recipes:
        module = int8_input_module(transformer, recipe, calibration_texts)
        what = f"the {recipe} int8 recipe"
        check = check_int8(encode_with, module, transformer, what=what, kind=kind, thresholds=limits)
        module.int8_check = check
        if check.passed:
            logger.info("%s", check.summary())
            return module
        logger.warning("%s", check.summary())
    accept = "min_cosine=..." if kind == "vectors" else "min_rank_agreement=... or max_score_diff=..."
    raise check.error(
        "The model stays fp32. Calibrate on texts like the ones you encode (calibration_texts=[...]), accept "
        f"less with {accept}, or keep the fp32 model."
    )


def check_loaded_int8(
    modules: Any, encode_with: EncodeWith, *, backend: str, hf_kwargs: dict[str, Any]
) -> Int8Check | None:
    """Check a loaded model whose input module runs an int8 file; on failure fall back (auto) or raise.

    ``modules`` is the model (its first module is replaced by the fp32 one when auto falls back); its
    ``calibration_output`` says which self-check applies (a cross-encoder's "scores", else vectors).
    """
    module = modules[0]
    if not isinstance(module, OnnxTransformer) or not module.is_int8 or module.folder is None:
        return None
    model_kwargs = dict(hf_kwargs.get("model_kwargs") or {})
    given = {field: model_kwargs.pop(key) for key, field in INT8_OPTIONS.items() if key in model_kwargs}
    kind = check_kind(getattr(modules, "calibration_output", "sentence_embedding"))
    what = Path(str(module.onnx_model)).name
    thresholds = Int8Thresholds(**given)
    check = check_int8(encode_with, module, fp32_module(module), what=what, kind=kind, thresholds=thresholds)
    module.int8_check = check
    if check.passed:
        logger.info("%s", check.summary())
        return check
    if backend != "auto":
        keys = INT8_OPTION if kind == "vectors" else "int8_min_rank_agreement' or 'int8_max_score_diff"
        raise check.error(
            f"Load the fp32 model instead (leave out model_kwargs['file_name']), or accept less with "
            f"model_kwargs={{'{keys}': ...}}; backend='auto' does the former on its own."
        )
    logger.warning("%s; backend='auto' runs the fp32 model instead.", check.summary())
    model_kwargs.pop("file_name", None)
    task = {"transformer_task": module.transformer_task}
    fallback = Transformer.load(
        str(module.folder), backend="auto", init_defaults=task, **{**hf_kwargs, "model_kwargs": model_kwargs}
    )
    fallback.int8_check = check  # type: ignore[assignment]  # what `embedstack info` reports
    modules[0] = fallback
    return check


def fp32_module(module: OnnxTransformer) -> Any:
    """The fp32 backbone of an int8 module's folder: its fp32 ONNX export if it has one, else the torch weights."""
    assert module.folder is not None
    task = {"transformer_task": module.transformer_task}  # a plain classifier folder has no file that says so
    exported = find_onnx_file(module.folder, ONNX_FILE)
    if exported is not None:
        settings = {**Transformer.load_config(str(module.folder)), **task}
        return OnnxTransformer.from_folder(module.folder, exported, module.provider, settings)
    return Transformer.load(str(module.folder), init_defaults=task)
