"""int8 quantization of an exported backbone: the recipes, and onnxruntime's dynamic quantization under them.

Every recipe smooths the weight MatMuls first (onnx_smooth: activation outliers moved into the weights, measured on
calibration texts), then quantizes them with onnxruntime: weights int8 with one scale per output channel,
activations per pass (MatMulInteger). The feed-forward down-projections and the embedding tables stay fp32
(quantizing the down-projections too took all-MiniLM-L6-v2's lowest cosine to fp32 from 0.993 to 0.96). Files
are named as sentence-transformers names them (``onnx/model_qint8_avx512_vnni.onnx``, ...).

Which recipe suits which CPU (cpu_features; measured in benchmarks/RESULTS.md):
- "int8" (8-bit weights; ``model_qint8_avx512_vnni.onnx``): the closest to fp32, and exact on every CPU: where
  onnxruntime's int8-weight kernels would overflow 16-bit sums (x86 without VNNI or AMX) the session runs the
  weights as uint8 instead (onnx.inference_session), which is exact but about as slow as fp32 there.
- "qint8_avx2" (7-bit weights, smoothing alpha 0.6, GPTQ rounding): the fast int8 kernels cannot overflow with
  weights in [-64, 64], so it runs them on every CPU; a little coarser (lowest cosine 0.991 against 0.993 on
  STS-B sentences). What ``model.quantize("int8")`` takes on x86 without VNNI.
- "quint8_avx2" (uint8 weights): exact everywhere, but never runs the int8 kernels.
- "qint8_avx512_vnni": "int8" under sentence-transformers' name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedstack.backends.calibration_texts import CALIBRATION_TEXTS
from embedstack.backends.onnx_export import ONNX_FILE, require_onnx
from embedstack.backends.onnx_gptq import gptq_round
from embedstack.backends.onnx_smooth import (
    SMOOTHING_ALPHA,
    ActivationStats,
    activation_stats,
    calibration_feeds,
    smooth_graph,
    weight_readers,
)


@dataclass(frozen=True)
class Int8Recipe:
    """How one int8 file is made.

    Attributes:
        file_name: The file under ``onnx/`` (sentence-transformers' name for the recipe).
        unsigned: uint8 weights (onnxruntime's U8U8 kernels) instead of int8.
        seven_bit: Weights in [-64, 64], which no int8 kernel can overflow.
        alpha: SmoothQuant's migration strength.
        gptq: Round the weights with GPTQ instead of to nearest.
    """

    file_name: str
    unsigned: bool = False
    seven_bit: bool = False
    alpha: float = SMOOTHING_ALPHA
    gptq: bool = False


RECIPES = {
    "int8": Int8Recipe("model_qint8_avx512_vnni.onnx"),
    "qint8_avx512_vnni": Int8Recipe("model_qint8_avx512_vnni.onnx"),
    "qint8_avx2": Int8Recipe("model_qint8_avx2.onnx", seven_bit=True, alpha=0.6, gptq=True),
    "quint8_avx2": Int8Recipe("model_quint8_avx2.onnx", unsigned=True),
}
QUANTIZED_FILES = {name: recipe.file_name for name, recipe in RECIPES.items()}
# The op types an int8 file holds and an fp32 one does not.
INT8_OPS = frozenset({"MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul", "QAttention"})


def quantize_int8(
    source: Path,
    target: Path,
    module: Any,
    recipe: str = "int8",
    calibration_texts: Sequence[str] | None = None,
) -> Path:
    """Write the int8 version of the exported backbone ``source`` to ``target`` with ``recipe`` (a RECIPES key).

    ``module`` is the Transformer module whose tokenizer reads ``calibration_texts`` (default CALIBRATION_TEXTS).
    """
    require_onnx()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    spec = RECIPES[recipe]
    model = onnx.load(str(source))  # read once: inputs, down-projections and the weights to smooth
    texts = CALIBRATION_TEXTS if calibration_texts is None else calibration_texts
    feeds = calibration_feeds(module, texts, [value.name for value in model.graph.input])
    kept = down_projections(model)
    readers = weight_readers(model.graph, kept)
    stats = activation_stats(model, list(readers), feeds, gram=spec.gptq) if readers else {}
    factors = smooth_graph(model, readers, stats, spec.alpha)
    with tempfile.TemporaryDirectory(prefix="embedstack-int8-") as staging:
        smoothed = Path(staging) / ONNX_FILE
        onnx.save(model, str(smoothed))
        quantize_dynamic(
            str(smoothed), str(target), weight_type=QuantType.QUInt8 if spec.unsigned else QuantType.QInt8,
            per_channel=True, reduce_range=spec.seven_bit, op_types_to_quantize=["MatMul"], nodes_to_exclude=kept,
        )  # fmt: skip
    if spec.gptq:
        _round_with_gptq(target, model, readers, stats, factors, limit=64 if spec.seven_bit else 127)
    return target


def _round_with_gptq(
    target: Path,
    smoothed: Any,
    readers: dict[str, list[Any]],
    stats: dict[str, ActivationStats],
    factors: dict[str, np.ndarray],
    limit: int,
) -> None:
    """Replace the int8 weights of ``target`` by GPTQ's rounding of the smoothed fp32 weights (same scales)."""
    import onnx
    from onnx import numpy_helper

    quantized = onnx.load(str(target))
    stored = {tensor.name: tensor for tensor in quantized.graph.initializer}
    weights = {tensor.name: tensor for tensor in smoothed.graph.initializer}
    for tensor, nodes in readers.items():
        gram = stats[tensor].gram
        assert gram is not None  # asked for with the stats
        gram = gram / np.outer(factors[tensor], factors[tensor])  # the smoothed input is x / factor
        for node in nodes:
            name = node.input[1]
            scale = numpy_helper.to_array(stored[f"{name}_scale"])
            rounded = gptq_round(numpy_helper.to_array(weights[name]), gram, scale, limit)
            stored[f"{name}_quantized"].CopyFrom(numpy_helper.from_array(rounded, f"{name}_quantized"))
    onnx.save(quantized, str(target))


def down_projections(model: Any) -> list[str]:
    """The feed-forward output layers of a transformer backbone (e.g. 1536 -> 384), in an ONNX file or ModelProto.

    They are the MatMul nodes whose constant weight maps a wider input to a narrower output; found by shape, so any
    architecture's node naming works.
    """
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model), load_external_data=False)
    shapes = {weight.name: tuple(weight.dims) for weight in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and len(shapes.get(node.input[1], ())) == 2
        and shapes[node.input[1]][0] > shapes[node.input[1]][1]
    ]


def is_int8_file(model: Path | bytes) -> bool:
    """Whether an ONNX file (or its bytes) holds int8 MatMuls."""
    import onnx

    proto = (
        onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model), load_external_data=False)
    )
    return any(node.op_type in INT8_OPS for node in proto.graph.node)
