"""The onnx backend and int8 for cross-encoders: the classifier exported with its ``logits`` (optimum's
ORTModelForSequenceClassification layout), the same scores as torch, on-the-fly export of a plain classifier folder,
which backends run a classifier, and the int8 self-check's score rule (order kept, activated scores close)."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch

from embedstack import CrossEncoder, SentenceTransformer
from embedstack.backends.int8_check import Int8Thresholds, check_int8, rank_agreement
from embedstack.backends.native import native_input_module
from embedstack.backends.onnx_quantize import QUANTIZED_FILES
from embedstack.errors import Int8QualityError, ModelFormatError
from embedstack.modules import Transformer
from helpers import copy_tokenizer

TOLERANCE = 1e-5
INT8_FILE = QUANTIZED_FILES["int8"]
PAIRS = [
    ("How many people live in Berlin?", "Berlin has 3.5 million registered inhabitants."),
    ("How many people live in Berlin?", "Berlin is well known for its museums."),
    ("a cat", "a dog"),
    ("", "an empty query"),
    ("a long document", "word " * 60),
]


def _classifier(folder, num_labels=1, initializer_range=0.02):
    """A tiny random BertForSequenceClassification (plain Hugging Face folder), classifier weights of std 1.

    With the default initializer_range its scores differ by under 0.01 logits from pair to pair; 0.1 spreads them
    over about 0.7, so the int8 check has an order to keep.
    """
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128, num_labels=num_labels, initializer_range=initializer_range,
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    model.save_pretrained(folder)
    copy_tokenizer(folder)
    return folder


def _logits(model):
    return model.predict(PAIRS, activation_fn=torch.nn.Identity())


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    """The one-label classifier with spread scores, as a CrossEncoder on torch."""
    return CrossEncoder(str(_classifier(tmp_path_factory.mktemp("spread") / "m", initializer_range=0.1)), device="cpu")


@pytest.fixture(scope="module")
def int8_export(spread, tmp_path_factory):
    return spread.export_onnx(tmp_path_factory.mktemp("int8") / "exported", quantize="int8")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDSTACK_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("num_labels", [1, 3])
def test_the_export_gives_torch_scores_in_optimums_layout(num_labels, tmp_path):
    model = CrossEncoder(str(_classifier(tmp_path / "m", num_labels)), device="cpu")
    exported = model.export_onnx(tmp_path / "exported")
    graph = onnx.load(str(exported / "onnx" / "model.onnx")).graph
    assert [value.name for value in graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [value.name for value in graph.output] == ["logits"]
    onnx_model = CrossEncoder(str(exported), device="cpu", backend="onnx")
    assert onnx_model.get_backend() == "onnx" and onnx_model.num_labels == num_labels
    assert np.abs(_logits(onnx_model) - _logits(model)).max() <= TOLERANCE
    assert np.abs(onnx_model.predict(PAIRS) - model.predict(PAIRS)).max() <= TOLERANCE  # with the default activation
    if num_labels == 1:
        documents = ["a dog", "a cat", "a car"]
        ranked = {hit["corpus_id"]: hit["score"] for hit in onnx_model.rank("a cat", documents)}
        assert ranked == pytest.approx(dict(enumerate(model.predict([("a cat", doc) for doc in documents]))))
    assert np.abs(_logits(CrossEncoder(str(exported), device="cpu")) - _logits(model)).max() == 0  # torch reads it


def test_int8_export_and_quantize_pass_the_score_check_and_stay_close(spread, int8_export):
    expected = spread.predict(PAIRS)
    int8 = CrossEncoder(str(int8_export), device="cpu", backend="onnx", model_kwargs={"file_name": f"onnx/{INT8_FILE}"})
    check = int8.int8_check
    assert check.passed and check.kind == "scores" and check.ordered > 0 and check.lowest_cosine is None
    assert np.abs(int8.predict(PAIRS) - expected).max() <= 0.05
    quantized = CrossEncoder(str(int8_export), device="cpu").quantize("int8")
    assert quantized.int8_check.passed and quantized.int8_check.kind == "scores"
    assert np.abs(quantized.predict(PAIRS) - expected).max() <= 0.05


def test_an_impossible_threshold_refuses_and_writes_nothing(spread, int8_export, tmp_path, cache):
    with pytest.raises(Int8QualityError, match="Nothing was written.*max_score_diff"):
        spread.export_onnx(tmp_path / "refused", quantize="int8", max_score_diff=1e-9)
    assert not (tmp_path / "refused").exists()
    model = CrossEncoder(str(int8_export), device="cpu")
    with pytest.raises(Int8QualityError, match="The model stays fp32"):
        model.quantize("int8", max_score_diff=1e-9)
    assert isinstance(model[0], Transformer) and model.int8_check is None
    with pytest.raises(ValueError, match="only min_rank_agreement and max_score_diff apply"):
        model.quantize("int8", min_cosine=0.9)  # the embedding rule means nothing for scores
    options = {"file_name": f"onnx/{INT8_FILE}", "int8_max_score_diff": 1e-9}
    with pytest.raises(Int8QualityError, match="int8_max_score_diff"):
        CrossEncoder(str(int8_export), device="cpu", backend="onnx", model_kwargs=options)
    fallback = CrossEncoder(str(int8_export), device="cpu", backend="auto", model_kwargs=options)
    assert not fallback.int8_check.passed and fallback.get_backend() in ("onnx", "torch", "native")
    assert np.abs(_logits(fallback) - _logits(model)).max() <= TOLERANCE  # fp32 again


def test_native_never_takes_a_classifier_as_an_encoder(cross_encoder_path):
    """The native backend runs a classifier as a classifier only (tests/backends/test_native_cross_encoder.py)."""
    assert native_input_module(cross_encoder_path) is None  # as an embedding backbone: not a plain BERT encoder
    assert native_input_module(cross_encoder_path, "sequence-classification") is not None


def test_auto_may_run_a_classifier_on_its_export_with_the_same_scores(int8_export, spread, cache):
    model = CrossEncoder(str(int8_export), device="cpu", backend="auto")
    assert model.get_backend() in ("onnx", "torch", "native") and model.backend_choice is not None
    assert "onnx" in model.backend_choice.seconds or model.backend_choice.reason.startswith("torch")
    assert np.abs(_logits(model) - _logits(spread)).max() <= TOLERANCE


def test_a_plain_classifier_folder_exports_on_the_fly(cross_encoder_path, tmp_path, cache):
    folder = tmp_path / "plain"
    shutil.copytree(cross_encoder_path, folder)
    expected = _logits(CrossEncoder(str(folder), device="cpu"))
    assert CrossEncoder(str(folder), device="cpu", backend="auto").get_backend() != "onnx"  # no export at load
    model = CrossEncoder(str(folder), device="cpu", backend="onnx")
    assert model.get_backend() == "onnx"
    assert np.abs(_logits(model) - expected).max() <= TOLERANCE
    model.save(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "onnx" / "model.onnx").is_file()
    saved = CrossEncoder(str(tmp_path / "saved"), device="cpu", backend="onnx", model_kwargs={"export": False})
    assert np.abs(_logits(saved) - expected).max() <= TOLERANCE
    # The classifier's export read as an embedding backbone: refused by name, left out by auto.
    shutil.copytree(tmp_path / "saved" / "onnx", folder / "onnx")
    with pytest.raises(ModelFormatError, match="not the 'last_hidden_state'"):
        SentenceTransformer(str(folder), device="cpu", backend="onnx")
    assert SentenceTransformer(str(folder), device="cpu", backend="auto").get_backend() != "onnx"


@pytest.mark.parametrize(
    ("int8_logits", "passed"),
    [
        ([0.03, 0.01, 1.0, 1.2], True),  # swaps the pairs fp32 scores 0.02 apart: a tie, no error
        ([0.0, 0.02, 1.11, 1.09], False),  # swaps pairs fp32 scores 0.2 apart: 1 of 5 orders lost, scores close
        ([0.3, 0.32, 1.3, 1.5], False),  # keeps every order, but moves the sigmoid scores by up to 0.074
    ],
)
def test_the_score_rule(int8_logits, passed):
    reference = np.array([[0.0], [0.02], [1.0], [1.2]])  # (pairs, labels)
    outputs = {"fp32": reference, "int8": np.array(int8_logits)[:, None]}
    check = check_int8(outputs.__getitem__, "int8", "fp32", what="test", kind="scores")
    assert check.passed is passed, check.summary()
    assert rank_agreement(reference, reference) == (1.0, 5)  # every couple but the tie (0, 0.02)


def test_the_score_rule_over_several_labels_and_its_thresholds():
    reference = np.array([[2.0, 0.0, -2.0], [0.0, 1.0, 0.0], [-1.0, -1.0, 3.0]])
    outputs = {"fp32": reference, "int8": reference + 0.01}  # softmax is unchanged by a shift of the row
    check = check_int8(outputs.__getitem__, "int8", "fp32", what="test", kind="scores")
    assert check.passed and check.score_diff < 1e-9 and check.rank_agreement == 1.0
    with pytest.raises(ValueError, match=r"max_score_diff must be in \(0, 1\]"):
        Int8Thresholds(max_score_diff=0).checked("scores")
    with pytest.raises(ValueError, match="only min_cosine apply"):
        Int8Thresholds(min_rank_agreement=0.5).checked("vectors")


def test_sentence_transformers_reads_the_export(int8_export, spread):
    pytest.importorskip("optimum.onnxruntime", reason="sentence-transformers' onnx backend needs optimum")
    from sentence_transformers import CrossEncoder as Reference

    reference = Reference(str(int8_export), device="cpu", backend="onnx")
    assert np.abs(reference.predict(PAIRS) - spread.predict(PAIRS)).max() <= TOLERANCE
