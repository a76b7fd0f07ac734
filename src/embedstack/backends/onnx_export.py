"""Export a Transformer module's backbone to ONNX, and quantize the export to int8 with onnxruntime.

The layout is the one sentence-transformers and optimum use: ``onnx/model.onnx`` with int64 inputs
``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the backbone takes them), dynamic batch and
sequence axes, and the output ``last_hidden_state``; quantized files beside it under sentence-transformers'
names (``onnx/model_qint8_avx512_vnni.onnx``, ...). No optimum: ``torch.onnx.export`` and
``onnxruntime.quantization`` do the work.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from embedstack.backends.calibration_texts import CALIBRATION_TEXTS
from embedstack.backends.onnx_optimize import OPTIMIZED_FILES, optimize_onnx
from embedstack.backends.onnx_smooth import calibration_feeds, check_calibration_texts, smooth
from embedstack.errors import MissingExtraError

logger = logging.getLogger(__name__)

ONNX_FOLDER = "onnx"
ONNX_FILE = "model.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
# The int8 files sentence-transformers names after the instruction set each recipe targets; "int8" is ours.
QUANTIZED_FILES = {
    "int8": "model_qint8_avx512_vnni.onnx",
    "qint8_avx512_vnni": "model_qint8_avx512_vnni.onnx",
    "qint8_avx2": "model_qint8_avx2.onnx",
    "quint8_avx2": "model_quint8_avx2.onnx",
}
ONNX_INSTALL = "pip install 'embedstack[onnx]'"
_SAMPLE = ["embedstack exports this backbone", "and a second, longer sentence to pad the first one"]


class _Backbone(torch.nn.Module):
    """The backbone with positional inputs (what the exporter traces) and its token embeddings as output."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        output = self.model(**dict(zip(self.names, inputs)), return_dict=True)
        return output.last_hidden_state


def export_backbone(transformer: Any, target: Path) -> Path:
    """Write ``transformer``'s Hugging Face backbone to the ONNX file ``target``; returns ``target``.

    Raises:
        MissingExtraError: onnx is not installed.
        ValueError: the module has no text tokenizer (only text backbones are exported).
    """
    require_onnx()
    tokenizer = getattr(transformer, "tokenizer", None)
    if tokenizer is None or list(transformer.modality_config) != ["text"]:
        raise ValueError(
            "ONNX export covers text backbones (a Transformer with a tokenizer and a text-only modality_config); "
            f"this one takes {list(transformer.modality_config)}."
        )
    backbone = transformer.model
    sample = tokenizer(_SAMPLE, padding=True, return_tensors="pt")
    accepted = transformer.model_forward_params or set(sample)
    names = [name for name in INPUT_NAMES if name in sample and name in accepted]
    target.parent.mkdir(parents=True, exist_ok=True)
    was_training = backbone.training
    wrapper = _Backbone(backbone, names).eval()  # eval() also puts the backbone in eval mode (no dropout)
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, OUTPUT_NAME]}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's notes on shape-dependent Python branches
            torch.onnx.export(
                wrapper,
                tuple(sample[name] for name in names),
                str(target),
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
    finally:
        backbone.train(was_training)
    logger.info("Exported the %s backbone to %s", type(backbone).__name__, target)
    return target


def export_model(
    model: Any,
    path: Path,
    quantize: str | None = None,
    optimize: str | None = None,
    calibration_texts: Sequence[str] | None = None,
) -> Path:
    """Save ``model`` into ``path`` with an ONNX export of its backbone in ``onnx/model.onnx``.

    With ``quantize`` (a key of QUANTIZED_FILES) the int8 export goes beside it, calibrated on
    ``calibration_texts``; with ``optimize`` ("O1" to "O4") a graph-optimized one. Returns ``path``.
    """
    if quantize is not None and quantize not in QUANTIZED_FILES:
        raise ValueError(f"quantize {quantize!r} is not supported; choose None or one of {list(QUANTIZED_FILES)}.")
    if optimize is not None and optimize not in OPTIMIZED_FILES:
        raise ValueError(f"optimize {optimize!r} is not supported; choose None or one of {list(OPTIMIZED_FILES)}.")
    if calibration_texts is not None:
        calibration_texts = check_calibration_texts(calibration_texts)  # before anything is written
    require_onnx()
    model.save(str(path))
    target = path / ONNX_FOLDER / ONNX_FILE
    if not target.is_file():  # a model on the onnx backend saved its export already
        export_backbone(model[0], target)
    if quantize is not None:
        quantize_int8(target, target.with_name(QUANTIZED_FILES[quantize]), model[0], quantize, calibration_texts)
    if optimize is not None:
        optimize_onnx(target, target.with_name(OPTIMIZED_FILES[optimize]), optimize, model[0].config)
    return path


def quantize_int8(
    source: Path,
    target: Path,
    module: Any,
    recipe: str = "int8",
    calibration_texts: Sequence[str] | None = None,
) -> Path:
    """Dynamic int8 quantization of an exported backbone, with the recipe chosen by measurement.

    The weight MatMuls are smoothed first (onnx_smooth: activation outliers moved into the weights, measured on
    ``calibration_texts`` tokenized by ``module``, or on CALIBRATION_TEXTS), then quantized: weights int8 with one
    scale per output channel, activations per pass (onnxruntime's MatMulInteger kernels, fast with AVX-512 VNNI).
    The feed-forward down-projections and the embedding tables stay fp32. On all-MiniLM-L6-v2 this keeps every
    cosine to the fp32 vectors >= 0.99 on short and long texts (without smoothing: 0.975 on STS-B sentences;
    quantizing the down-projections too: 0.95); see benchmarks/RESULTS.md. The ``recipe`` "qint8_avx2" quantizes
    weights to 7 bits (CPUs without VNNI add int8 products in 16 bits, which 8-bit weights can overflow) and
    "quint8_avx2" to uint8, as optimum's avx2 configurations do; "int8" and "qint8_avx512_vnni" are the recipe above.
    """
    require_onnx()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))  # read once: inputs, down-projections and the weights to smooth
    texts = CALIBRATION_TEXTS if calibration_texts is None else calibration_texts
    feeds = calibration_feeds(module, texts, [value.name for value in model.graph.input])
    kept = down_projections(model)
    with tempfile.TemporaryDirectory(prefix="embedstack-int8-") as staging:
        smoothed = smooth(model, Path(staging) / ONNX_FILE, feeds, exclude=kept)
        quantize_dynamic(
            str(smoothed), str(target), weight_type=QuantType.QUInt8 if recipe == "quint8_avx2" else QuantType.QInt8,
            per_channel=True, reduce_range=recipe == "qint8_avx2", op_types_to_quantize=["MatMul"],
            nodes_to_exclude=kept,
        )  # fmt: skip
    return target


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


def require_onnx() -> None:
    """Raise MissingExtraError with the pip command unless onnx and onnxruntime are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            f"ONNX export and the onnx backend need onnx and onnxruntime. Run: {ONNX_INSTALL}"
        ) from None
