"""SmoothQuant for an exported backbone: move activation outliers into the weights before int8 quantization.

Dynamic int8 quantizes each MatMul input with one scale for the whole tensor. In BERT-like backbones a few
channels of the LayerNorm outputs are ten to a hundred times larger than the rest, so that scale leaves the other
channels a handful of int8 steps, and short texts (whose vectors average few tokens) lose the most: on
all-MiniLM-L6-v2 the lowest cosine to the fp32 vectors was 0.975 on STS-B sentences. SmoothQuant (Xiao et al.,
2023) divides each input channel ``j`` by ``s_j = max|x_j| ** alpha / max|W_j| ** (1 - alpha)`` and multiplies
the weight's row ``j`` by ``s_j``: the product is unchanged and both sides quantize well (lowest cosine 0.992 or more).

The division is a ``Mul`` node inserted before the MatMuls that read the tensor (the LayerNorm output also feeds
the residual, so it cannot be folded into the LayerNorm). ``max|x_j|`` is measured by running the fp32 export on
calibration texts (``calibration_texts.CALIBRATION_TEXTS`` unless the caller passes their own); the same run can
sum each input's Gram matrix ``X^T X``, which GPTQ rounding (onnx_gptq) weighs the weight errors with.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# SmoothQuant's default. On all-MiniLM-L6-v2 0.5 and 0.6 both keep every cosine >= 0.992 with 8-bit weights
# (0.3: 0.986, none: 0.975); 7-bit weights do better at 0.6 (benchmarks/RESULTS.md).
SMOOTHING_ALPHA = 0.5
_CALIBRATION_ROWS = 16  # texts per calibration pass


@dataclass
class ActivationStats:
    """What the calibration run saw of one activation tensor, over real tokens.

    Attributes:
        maxima: The largest absolute value of each channel (last axis), shape (channels,).
        gram: ``X^T X`` over every real token's channels (channels, channels), when asked for.
    """

    maxima: np.ndarray
    gram: np.ndarray | None = None


def calibration_feeds(module: Any, texts: Sequence[str], input_names: Iterable[str]) -> list[dict[str, np.ndarray]]:
    """The inputs of ``texts`` for an exported backbone, tokenized by ``module``'s tokenizer in small batches.

    A cross-encoder's classifier (transformer_task "sequence-classification") reads pairs, so there each text is
    paired with the next (as ``CrossEncoder.calibration_inputs`` pairs them for the self-check).

    Raises:
        ValueError: ``texts`` is empty or holds something other than strings.
    """
    texts = check_calibration_texts(texts)
    names = set(input_names)
    paired = getattr(module, "transformer_task", "feature-extraction") == "sequence-classification"
    feeds = []
    for start in range(0, len(texts), _CALIBRATION_ROWS):
        batch = texts[start : start + _CALIBRATION_ROWS]
        second = [texts[(start + index + 1) % len(texts)] for index in range(len(batch))] if paired else None
        encoded = module.tokenizer(
            batch,
            second,
            padding=True,
            truncation=True,
            max_length=module.max_seq_length,
            return_tensors="np",
        )
        feeds.append({name: np.asarray(value, dtype=np.int64) for name, value in encoded.items() if name in names})
    return feeds


def check_calibration_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list, or ValueError when it is empty or holds something other than strings."""
    if isinstance(texts, str):
        raise ValueError(f"calibration_texts must be a list of strings, not one string ({texts[:40]!r}); wrap it.")
    texts = list(texts)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise ValueError(
            "calibration_texts must be a non-empty list of strings (texts like the ones the model will encode); "
            f"got {len(texts)} items of types {sorted({type(text).__name__ for text in texts})}."
        )
    return texts


def weight_readers(graph: Any, exclude: Sequence[str] = ()) -> dict[str, list[Any]]:
    """Activation tensor -> the MatMul nodes that multiply it by a 2-D weight of their own (not in ``exclude``)."""
    weights = {tensor.name: tensor for tensor in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input)
    readers: dict[str, list[Any]] = defaultdict(list)
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is not None and len(weight.dims) == 2 and uses[weight.name] == 1 and node.name not in exclude:
            readers[node.input[0]].append(node)
    return dict(readers)


def smooth(source: Any, target: Path, feeds: list[dict[str, np.ndarray]], *, exclude: Sequence[str] = ()) -> Path:
    """Write ``source`` with its weight MatMuls smoothed (except the nodes named in ``exclude``) to ``target``.

    ``source`` is an ONNX file, or a loaded ModelProto (changed in place). The smoothed model computes the same
    function up to float rounding; only its int8 quantization improves.
    """
    import onnx

    model = onnx.load(str(source)) if isinstance(source, (str, Path)) else source
    readers = weight_readers(model.graph, exclude)
    smooth_graph(model, readers, activation_stats(model, list(readers), feeds) if readers else {})
    onnx.save(model, str(target))
    return target


def smooth_graph(
    model: Any, readers: dict[str, list[Any]], stats: dict[str, ActivationStats], alpha: float = SMOOTHING_ALPHA
) -> dict[str, np.ndarray]:
    """Smooth ``model`` in place: a ``Mul`` by ``1 / s`` on each tensor of ``readers``, ``s`` into its weights.

    Returns each smoothed tensor's factors ``s`` (channels,), by tensor name.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    factors = {}
    for tensor, nodes in readers.items():
        arrays = [numpy_helper.to_array(weights[node.input[1]]) for node in nodes]  # (in, out) each
        weight_max = np.max([np.abs(array).max(axis=1) for array in arrays], axis=0)  # (in,)
        scale = factors[tensor] = _scales(stats[tensor].maxima, weight_max, alpha)
        scale_name, smoothed = f"{tensor}_smooth_scale", f"{tensor}_smoothed"
        graph.initializer.append(numpy_helper.from_array((1 / scale).astype(np.float32), scale_name))
        position = list(graph.node).index(nodes[0])
        graph.node.insert(position, helper.make_node("Mul", [tensor, scale_name], [smoothed], name=f"{tensor}_smooth"))
        for node, array in zip(nodes, arrays):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(array * scale[:, None], node.input[1]))
            node.input[0] = smoothed
    return factors


def _scales(activation_max: np.ndarray, weight_max: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's per-channel factors; channels never seen active (or with zero weights) keep 1."""
    scale = np.power(np.maximum(activation_max, 1e-5), alpha) / np.power(np.maximum(weight_max, 1e-5), 1 - alpha)
    dead = (activation_max <= 0) | (weight_max <= 0)
    return np.where(dead, 1.0, scale).astype(np.float32)


def channel_maxima(model: Any, tensors: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The largest absolute value of each channel (last axis) of ``tensors`` over the real tokens of ``feeds``."""
    return {name: stats.maxima for name, stats in activation_stats(model, tensors, feeds).items()}


def activation_stats(
    model: Any, tensors: list[str], feeds: list[dict[str, np.ndarray]], *, gram: bool = False
) -> dict[str, ActivationStats]:
    """Run ``model`` (fp32) on ``feeds`` and keep, per tensor of ``tensors``, what :class:`ActivationStats` holds.

    Padding positions are left out: they are masked out of the vectors, so they should set no scale.
    """
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in tensors:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every probed tensor
    stats: dict[str, ActivationStats] = {}
    with tempfile.TemporaryDirectory(prefix="embedstack-smooth-") as staging:
        path = Path(staging) / "probe.onnx"
        onnx.save(probe, str(path), save_as_external_data=True)  # no 2 GB protobuf limit
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for feed in feeds:
            real = feed["attention_mask"].astype(bool) if "attention_mask" in feed else None
            for name, value in zip(tensors, session.run(tensors, feed)):
                tokens = value[real] if real is not None and value.shape[:2] == real.shape else value
                tokens = tokens.reshape(-1, value.shape[-1])  # (tokens, channels)
                _accumulate(stats, name, tokens, gram)
    return stats


def _accumulate(stats: dict[str, ActivationStats], name: str, tokens: np.ndarray, gram: bool) -> None:
    peak = np.abs(tokens).max(axis=0)
    product = tokens.T.astype(np.float64) @ tokens if gram else None
    seen = stats.get(name)
    if seen is None:
        stats[name] = ActivationStats(peak, product)
        return
    seen.maxima = np.maximum(seen.maxima, peak)
    if product is not None and seen.gram is not None:
        seen.gram += product
