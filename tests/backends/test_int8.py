"""int8 CPU mode: the backbone runs as an int8 ONNX export, close vectors, and a clear refusal to save."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from embedstack import SentenceTransformer
from embedstack.backends import cpu_features
from embedstack.backends.onnx import OnnxTransformer
from embedstack.modules import Pooling, Transformer
from helpers import short_texts


def test_int8_mode_quantizes_the_backbone_and_stays_close(tiny_bert_path, tmp_path):
    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")
    texts = short_texts()
    full = model.encode(texts, normalize_embeddings=True)
    model.quantize("int8")
    assert isinstance(model[0], OnnxTransformer) and model.get_backend() == "onnx"
    quantized = model.encode(texts, normalize_embeddings=True)
    assert (full * quantized).sum(1).min() > 0.9
    assert not np.allclose(full, quantized, atol=1e-6)
    with pytest.raises(ValueError, match="cannot store"):
        model.save(str(tmp_path / "q"))
    with pytest.raises(ValueError, match="'int4'"):
        model.quantize("int4")


def test_int8_mode_takes_calibration_texts(tiny_bert_path):
    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")
    with pytest.raises(ValueError, match="calibration_texts must be a non-empty list of strings"):
        model.quantize("int8", calibration_texts=[])
    assert isinstance(model[0], Transformer)  # refused before anything changed
    texts = short_texts()
    full = model.encode(texts, normalize_embeddings=True)
    model.quantize("int8", calibration_texts=texts[:8])
    assert (full * model.encode(texts, normalize_embeddings=True)).sum(1).min() > 0.9


@pytest.mark.parametrize(
    ("machine", "flags", "recipe"),
    [
        ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, "int8"),
        ("x86_64", {"avx2", "avx_vnni"}, "int8"),
        ("x86_64", {"avx2", "avx512f"}, "qint8_avx2"),
        ("x86_64", None, "qint8_avx2"),  # flags unreadable: the recipe that is safe everywhere
        ("aarch64", {"asimd"}, "int8"),
    ],
)
def test_the_int8_recipe_follows_the_cpu(monkeypatch, machine, flags, recipe):
    monkeypatch.setattr(cpu_features.platform, "machine", lambda: machine)
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: flags)
    assert cpu_features.int8_recipe_for_this_cpu() == recipe


@pytest.mark.parametrize(("flags", "widest"), [({"avx2", "avx512_vnni"}, 127), ({"avx2"}, 64)])
def test_int8_mode_takes_7_bit_weights_on_a_cpu_without_vnni(tiny_bert_path, monkeypatch, flags, widest):
    monkeypatch.setattr(cpu_features.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: flags)
    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")
    graph = onnx.load_from_string(model.quantize("int8")[0].onnx_model).graph
    weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) == widest
