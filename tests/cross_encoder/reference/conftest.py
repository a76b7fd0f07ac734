"""Fixtures for the vendored sentence-transformers CrossEncoder tests (tests/cross_encoder/reference/).

Upstream's tests load small models from the Hugging Face Hub (tests/conftest.py and tests/cross_encoder/conftest.py
of huggingface/sentence-transformers). These tests run offline, so each Hub id they name is stood in for by a
tiny random model built here (2 layers, 32 wide, the MiniLM tokenizer) and placed in a private Hub cache under that
id; the test bodies keep upstream's ids. While a test module runs, ``SENTENCE_TRANSFORMERS_HOME`` and
``huggingface_hub.constants.HF_HUB_CACHE`` point at that cache (restored after the module).

Stand-ins (the tests that check a real model's numbers are skipped as "needs the Hub"):

* ``cross-encoder-testing/reranker-bert-tiny-gooaq-bce``: a 1-label BertForSequenceClassification in the
  layout of sentence-transformers 4 (a plain Hugging Face folder, the Sigmoid activation under ``config.json``'s
  ``sentence_transformers`` key), as that Hub repository is (its 5.4 re-save is the separate "-STv54" repository,
  used only by upstream's training tests).
* ``cross-encoder/nli-MiniLM2-L6-H768``: a plain 3-label classifier (contradiction/entailment/neutral), as
  sentence-transformers 2 saved it (no activation recorded).
* ``sentence-transformers-testing/stsb-bert-tiny-safetensors``: a SentenceTransformer (BertModel + mean
  Pooling) saved by sentence-transformers 6.2: no classifier head, so a CrossEncoder adds a new one.
* ``cross-encoder-testing/reranker-bert-tiny-gooaq-bce-tanh-v3`` / ``-tanh-v4``: plain Hugging Face classifier
  folders with the Tanh activation where sentence-transformers 3 (``sbert_ce_default_activation_function``) and
  4 (``config.json``'s ``sentence_transformers`` key) wrote it.
* ``BAAI/bge-reranker-base``: a plain Hugging Face 1-label classifier whose tokenizer allows 512 tokens.
* ``google-bert/bert-base-uncased`` (the ``tokenizer`` fixture): the MiniLM ``tokenizer.json`` (the same
  uncased 30522-token WordPiece vocabulary).
"""

from __future__ import annotations

import logging
from copy import deepcopy
from pathlib import Path

import numpy as np
import pytest
import torch

from embedstack import CrossEncoder
from embedstack.defaults import default_model_path
from embedstack.modules import StaticEmbedding
from helpers import add_to_cache, copy_tokenizer

RERANKER_ID = "cross-encoder-testing/reranker-bert-tiny-gooaq-bce"
NLI_ID = "cross-encoder/nli-MiniLM2-L6-H768"
STSB_TINY_ID = "sentence-transformers-testing/stsb-bert-tiny-safetensors"
TANH_V3_ID = "cross-encoder-testing/reranker-bert-tiny-gooaq-bce-tanh-v3"
TANH_V4_ID = "cross-encoder-testing/reranker-bert-tiny-gooaq-bce-tanh-v4"
BGE_RERANKER_ID = "BAAI/bge-reranker-base"
TANH = "torch.nn.modules.activation.Tanh"
SIGMOID = "torch.nn.modules.activation.Sigmoid"


def _bert_config(num_labels: int = 1) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=num_labels,
    )


def _tiny_classifier(target: Path, num_labels: int = 1, seed: int = 0, **config_extra: object) -> Path:
    """A random BertForSequenceClassification (classifier weights with std 1, so pairs score apart)."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = _bert_config(num_labels)
    for key, value in config_extra.items():
        setattr(config, key, value)
    model = BertForSequenceClassification(config)
    torch.nn.init.normal_(model.classifier.weight, std=1.0)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    copy_tokenizer(target)
    return target


def _tiny_sentence_transformer(target: Path) -> Path:
    """A SentenceTransformer folder (BertModel + mean pooling), saved by sentence-transformers 6.2."""
    from sentence_transformers import SentenceTransformer as Reference
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertModel

    backbone = target.parent / f"{target.name}-backbone"
    torch.manual_seed(0)
    BertModel(_bert_config()).save_pretrained(backbone)
    copy_tokenizer(backbone)
    transformer = Transformer(str(backbone))
    Reference(modules=[transformer, Pooling(32)], device="cpu").save_pretrained(str(target))
    return target


def _clear_warning_once_cache() -> None:
    # Nothing to clear when warning_once is not the lru_cache-wrapped transformers version, as then
    # it does not suppress repeats in the first place.
    cache_clear = getattr(getattr(logging.Logger, "warning_once", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


@pytest.fixture(autouse=True)
def clear_warning_once_cache():
    """Upstream's (tests/conftest.py): transformers caches ``warning_once`` globally, so a warning one test emits
    would be silent in every later test. embedstack warns with plain ``logging``; kept so the tests run alike."""
    _clear_warning_once_cache()
    return _clear_warning_once_cache


@pytest.fixture(scope="session")
def reference_ce_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The stand-in model folders, by the Hub id they stand in for."""
    root = tmp_path_factory.mktemp("reference-ce-models")
    reranker = _tiny_classifier(  # as sentence-transformers 4 saved it
        root / "reranker", sentence_transformers={"activation_fn": SIGMOID, "version": "4.0.1"}
    )
    nli = _tiny_classifier(  # as sentence-transformers 2 saved it: no activation recorded
        root / "nli",
        num_labels=3,
        seed=1,
        id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
        label2id={"contradiction": 0, "entailment": 1, "neutral": 2},
    )
    tanh_v3 = _tiny_classifier(root / "tanh-v3", sbert_ce_default_activation_function=TANH)
    tanh_v4 = _tiny_classifier(root / "tanh-v4", sentence_transformers={"activation_fn": TANH, "version": "4.0.1"})
    for folder in (tanh_v3, tanh_v4):  # sanity: the activation is where that release wrote it
        assert TANH in (folder / "config.json").read_text()
    return {
        RERANKER_ID: reranker,
        NLI_ID: nli,
        STSB_TINY_ID: _tiny_sentence_transformer(root / "stsb-bert-tiny"),
        TANH_V3_ID: tanh_v3,
        TANH_V4_ID: tanh_v4,
        BGE_RERANKER_ID: _tiny_classifier(root / "bge-reranker", seed=2),
    }


@pytest.fixture(scope="session")
def reference_ce_hub_cache(tmp_path_factory: pytest.TempPathFactory, reference_ce_folders: dict[str, Path]) -> Path:
    """A Hugging Face Hub cache holding each stand-in as the main revision of the id it stands in for."""
    cache = tmp_path_factory.mktemp("reference-ce-hub")
    for repo_id, folder in reference_ce_folders.items():
        add_to_cache(cache, repo_id, folder)
    return cache


@pytest.fixture(scope="module", autouse=True)
def offline_hub(reference_ce_hub_cache: Path):
    """Resolve Hub ids from the stand-in cache while this module's tests run."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(reference_ce_hub_cache))
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(reference_ce_hub_cache))
        yield reference_ce_hub_cache


# Cross Encoders (upstream: tests/conftest.py and tests/cross_encoder/conftest.py)
@pytest.fixture(scope="session")
def _reranker_bert_tiny_model(reference_ce_folders: dict[str, Path]) -> CrossEncoder:
    model = CrossEncoder(str(reference_ce_folders[RERANKER_ID]))
    model.model_card_data.generate_widget_examples = False  # Disable widget examples generation for testing
    return model


@pytest.fixture()
def reranker_bert_tiny_model(_reranker_bert_tiny_model: CrossEncoder) -> CrossEncoder:
    return deepcopy(_reranker_bert_tiny_model)


@pytest.fixture(scope="session")
def _nli_minilm_model(reference_ce_folders: dict[str, Path]) -> CrossEncoder:
    return CrossEncoder(str(reference_ce_folders[NLI_ID]))


@pytest.fixture()
def nli_minilm_model(_nli_minilm_model: CrossEncoder) -> CrossEncoder:
    return deepcopy(_nli_minilm_model)


# Tokenization (upstream: tests/conftest.py, google-bert/bert-base-uncased from the Hub)
@pytest.fixture(scope="session")
def tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))


@pytest.fixture
def embedding_weights():
    return np.random.rand(30522, 768).astype(np.float32)


@pytest.fixture
def static_embedding(tokenizer, embedding_weights) -> StaticEmbedding:
    return StaticEmbedding(tokenizer, embedding_weights=embedding_weights)
