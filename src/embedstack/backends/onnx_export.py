"""Export a Transformer module's backbone to ONNX, and quantize the export to int8 with onnxruntime.

The layout is the one sentence-transformers and optimum use: ``onnx/model.onnx`` with int64 inputs
``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the backbone takes them), dynamic batch and
sequence axes, and the output ``last_hidden_state``; quantized files beside it under sentence-transformers'
names (``onnx/model_qint8_avx512_vnni.onnx``, ...). No optimum: ``torch.onnx.export`` and
``onnxruntime.quantization`` do the work.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from embedstack.backends.onnx_optimize import OPTIMIZED_FILES, optimize_onnx
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


def export_model(model: Any, path: Path, quantize: str | None = None, optimize: str | None = None) -> Path:
    """Save ``model`` into ``path`` with an ONNX export of its backbone in ``onnx/model.onnx``.

    With ``quantize`` (a key of QUANTIZED_FILES) the int8 export goes beside it, with ``optimize`` ("O1" to
    "O4") a graph-optimized one. Returns ``path``.
    """
    if quantize is not None and quantize not in QUANTIZED_FILES:
        raise ValueError(f"quantize {quantize!r} is not supported; choose None or one of {list(QUANTIZED_FILES)}.")
    if optimize is not None and optimize not in OPTIMIZED_FILES:
        raise ValueError(f"optimize {optimize!r} is not supported; choose None or one of {list(OPTIMIZED_FILES)}.")
    require_onnx()
    model.save(str(path))
    target = path / ONNX_FOLDER / ONNX_FILE
    if not target.is_file():  # a model on the onnx backend saved its export already
        export_backbone(model[0], target)
    if quantize is not None:
        quantize_int8(target, target.with_name(QUANTIZED_FILES[quantize]), recipe=quantize)
    if optimize is not None:
        optimize_onnx(target, target.with_name(OPTIMIZED_FILES[optimize]), optimize, model[0].config)
    return path


def quantize_int8(source: Path, target: Path, recipe: str = "int8") -> Path:
    """Dynamic int8 quantization of an exported backbone, with the recipe chosen by measurement.

    Weights are int8 with one scale per output channel and activations are quantized per batch (onnxruntime's
    MatMulInteger kernels, fast with AVX-512 VNNI), except the feed-forward down-projections, which stay fp32:
    on all-MiniLM-L6-v2 that lifts the lowest cosine to the fp32 vectors from 0.986 to 0.993 (STS-B 81.92 vs
    82.03 in fp32); see benchmarks/RESULTS.md. The ``recipe`` "qint8_avx2" quantizes weights to 7 bits (CPUs
    without VNNI add int8 products in 16 bits, which 8-bit weights can overflow) and "quint8_avx2" to uint8, as
    optimum's avx2 configurations do; "int8" and "qint8_avx512_vnni" are the recipe above.
    """
    require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = QuantType.QUInt8 if recipe == "quint8_avx2" else QuantType.QInt8
    quantize_dynamic(
        str(source), str(target), weight_type=weights, per_channel=True, reduce_range=recipe == "qint8_avx2",
        nodes_to_exclude=down_projections(source),
    )  # fmt: skip
    return target


def down_projections(path: Path) -> list[str]:
    """The feed-forward output layers of a transformer backbone (e.g. 1536 -> 384).

    They are the MatMul nodes whose constant weight maps a wider input to a narrower output; found by shape, so any
    architecture's node naming works.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {weight.name: tuple(weight.dims) for weight in graph.initializer}
    return [
        node.name
        for node in graph.node
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
