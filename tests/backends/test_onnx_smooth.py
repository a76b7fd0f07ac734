"""SmoothQuant before int8: the smoothed graph computes the same function, the ranges it measures are the real
ones, and on a backbone with an outlier channel (what real BERTs have) it keeps the int8 vectors close where plain
dynamic int8 does not."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from embedstack import SentenceTransformer
from embedstack.backends.onnx_quantize import QUANTIZED_FILES, down_projections
from embedstack.backends.onnx_smooth import calibration_feeds, channel_maxima, smooth
from helpers import OUTLIER, outlier_model, short_texts


def _run(path, feed):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def outlier_export(tiny_bert_path, tmp_path_factory):
    model = outlier_model(tiny_bert_path)
    folder = model.export_onnx(tmp_path_factory.mktemp("outlier") / "m", quantize="int8")
    return model, folder


def test_smoothing_keeps_the_function_and_measures_the_real_ranges(outlier_export, tmp_path):
    model, folder = outlier_export
    source = folder / "onnx" / "model.onnx"
    inputs = [value.name for value in onnx.load(str(source)).graph.input]
    feeds = calibration_feeds(model[0], short_texts(), inputs)
    smoothed = smooth(source, tmp_path / "smoothed.onnx", feeds)
    for feed in feeds:
        expected = _run(source, feed)
        assert np.abs(_run(smoothed, feed) - expected).max() <= 1e-4 * np.abs(expected).max()
    graph = onnx.load(str(smoothed)).graph
    layers = len(model[0].model.encoder.layer)
    assert sum(node.name.endswith("_smooth") for node in graph.node) == 4 * layers  # qkv, attention out, ffn in, out
    # The embeddings' LayerNorm output, measured by onnxruntime, against torch's over the real tokens.
    name = next(
        n.input[0] for n in onnx.load(str(source)).graph.node if n.name.endswith("layer.0/attention/self/query/MatMul")
    )
    measured = channel_maxima(onnx.load(str(source)), [name], feeds)[name]
    backbone = model[0].model
    expected = np.zeros_like(measured)
    for feed in feeds:
        with torch.no_grad():
            states = backbone(**{k: torch.from_numpy(v) for k, v in feed.items()}, output_hidden_states=True)
        real = feed["attention_mask"].astype(bool)
        expected = np.maximum(expected, states.hidden_states[0].numpy()[real].__abs__().max(0))
    np.testing.assert_allclose(measured, expected, rtol=1e-5)
    assert measured.argmax() == OUTLIER


def test_smoothing_keeps_int8_vectors_close_on_an_outlier_channel(outlier_export, tmp_path):
    model, folder = outlier_export
    texts = short_texts()
    expected = model.encode(texts)
    plain = tmp_path / "plain.onnx"  # the same int8 recipe without smoothing
    source = folder / "onnx" / "model.onnx"
    quantize_dynamic(
        str(source), str(plain), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
        nodes_to_exclude=down_projections(source),
    )  # fmt: skip
    results = {}
    for name, file in [("smoothed", QUANTIZED_FILES["int8"]), ("plain", str(plain))]:
        options = {"file_name": file, "int8_min_cosine": 0.5}  # the plain file fails the self-check: load it anyway
        int8 = SentenceTransformer(str(folder), device="cpu", backend="onnx", model_kwargs=options)
        results[name] = _cosines(int8.encode(texts), expected).min()
    assert 1 - results["smoothed"] < (1 - results["plain"]) / 5, results  # measured: 0.999 against 0.990


def test_calibration_texts_are_checked_and_used(tiny_bert_path, tmp_path):
    from embedstack.cli import main

    model = outlier_model(tiny_bert_path)
    with pytest.raises(ValueError, match="calibration_texts must be a non-empty list of strings"):
        model.export_onnx(tmp_path / "empty", quantize="int8", calibration_texts=[])
    with pytest.raises(ValueError, match="calibration_texts must be a non-empty list of strings"):
        model.export_onnx(tmp_path / "ids", quantize="int8", calibration_texts=[[101, 102]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not one string"):
        model.export_onnx(tmp_path / "one", quantize="int8", calibration_texts="a single text")
    assert not any((tmp_path / name).exists() for name in ("empty", "ids", "one"))  # refused before writing
    # Calibrating on one word sees a narrower range than the built-in texts: a different smoothing, other weights.
    default = model.export_onnx(tmp_path / "default", quantize="int8")
    narrow = model.export_onnx(tmp_path / "narrow", quantize="int8", calibration_texts=["a"])
    int8 = "onnx/" + QUANTIZED_FILES["int8"]
    assert (default / int8).read_bytes() != (narrow / int8).read_bytes()
    (tmp_path / "texts.txt").write_text("a\n", encoding="utf-8")
    model.save(str(tmp_path / "float"))
    assert main(["export", "onnx", str(tmp_path / "float"), str(tmp_path / "cli"), "--quantize", "int8",
                 "--calibration", str(tmp_path / "texts.txt")]) == 0  # fmt: skip
    assert (tmp_path / "cli" / int8).read_bytes() == (narrow / int8).read_bytes()
