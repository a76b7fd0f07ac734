"""int8 CPU mode: the backbone runs as an int8 ONNX export, close vectors, and a clear refusal to save."""

from __future__ import annotations

import numpy as np
import pytest

from embedstack import SentenceTransformer
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
