"""The native backend runs a cross-encoder's BertForSequenceClassification: the torch classifier's scores, on the
traced graph; folders it cannot run exactly stay on torch."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from embedstack import CrossEncoder, SentenceTransformer
from embedstack.backends.native import NativeTransformer
from embedstack.modules import Transformer
from helpers import short_texts, tiny_cross_encoder


def _pairs() -> list[tuple[str, str]]:
    texts = short_texts()
    return [(texts[i], " ".join([texts[(i + 1) % len(texts)]] * (1 + i % 4))) for i in range(len(texts))]


@pytest.mark.parametrize("num_labels", [1, 3])
def test_native_scores_are_the_torch_classifiers(tmp_path, num_labels):
    folder = tiny_cross_encoder(tmp_path / "reranker", num_labels=num_labels)
    native = CrossEncoder(str(folder), backend="native", device="cpu")
    torch_model = CrossEncoder(str(folder), backend="torch", device="cpu")
    assert isinstance(native[0], NativeTransformer) and isinstance(torch_model[0], Transformer)
    assert repr(native) == repr(torch_model) and native.num_labels == torch_model.num_labels == num_labels
    np.testing.assert_allclose(native.predict(_pairs()), torch_model.predict(_pairs()), atol=1e-5)
    np.testing.assert_allclose(native.predict(_pairs(), batch_size=2), torch_model.predict(_pairs()), atol=1e-5)
    assert native[0]._graph.graph is not None  # scored through the traced graph
    if num_labels == 1:
        ranked = native.rank("a query", [b for _, b in _pairs()])
        assert [r["corpus_id"] for r in ranked] == [
            r["corpus_id"] for r in torch_model.rank("a query", [b for _, b in _pairs()])
        ]


def test_a_saved_cross_encoder_runs_native_and_auto_may_choose_it(tmp_path, cross_encoder_path):
    saved = tmp_path / "saved"
    CrossEncoder(str(cross_encoder_path), device="cpu").save(str(saved))
    native = CrossEncoder(str(saved), backend="native", device="cpu")
    reference = CrossEncoder(str(saved), backend="torch", device="cpu")
    np.testing.assert_allclose(native.predict(_pairs()), reference.predict(_pairs()), atol=1e-5)
    auto = CrossEncoder(str(saved), backend="auto", device="cpu")
    assert "native" in auto.backend_choice.seconds  # a candidate now, measured beside torch
    np.testing.assert_allclose(auto.predict(_pairs()), reference.predict(_pairs()), atol=1e-5)


def test_a_classifier_without_its_trained_head_stays_on_torch(tmp_path, cross_encoder_path):
    folder = tmp_path / "headless"
    shutil.copytree(cross_encoder_path, folder)
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith("classifier.")}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="native"):
        CrossEncoder(str(folder), backend="native", device="cpu")


def test_a_legacy_activation_in_config_json_stays_on_torch(tmp_path, cross_encoder_path):
    """sentence-transformers < 6 kept the activation in config.json, which the CrossEncoder reads from the
    transformers config: the native backend declines such folders rather than score them with another activation."""
    folder = tmp_path / "legacy"
    shutil.copytree(cross_encoder_path, folder)
    config = json.loads((folder / "config.json").read_text())
    config["sbert_ce_default_activation_function"] = "torch.nn.modules.linear.Identity"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="native"):
        CrossEncoder(str(folder), backend="native", device="cpu")
    auto = CrossEncoder(str(folder), backend="auto", device="cpu")
    assert auto.get_backend() == "torch"
    np.testing.assert_allclose(
        auto.predict(_pairs()), CrossEncoder(str(folder), device="cpu").predict(_pairs()), atol=1e-6
    )


def test_the_classifier_architecture_is_native_for_the_classification_task_only(tiny_bert_path, cross_encoder_path):
    """A plain BERT as a SentenceTransformer stays native; a BertForSequenceClassification folder loaded as a
    SentenceTransformer (its backbone's token vectors) is not the native classifier's to run."""
    assert isinstance(SentenceTransformer(str(tiny_bert_path), backend="native", device="cpu")[0], NativeTransformer)
    with pytest.raises(ValueError, match="native"):
        SentenceTransformer(str(cross_encoder_path), backend="native", device="cpu")
