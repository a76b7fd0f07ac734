from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def minilm_path():
    from embedstack.defaults import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def minilm(minilm_path):
    from embedstack import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture(scope="session")
def reference_minilm(minilm_path):
    from sentence_transformers import SentenceTransformer as Reference

    return Reference(str(minilm_path), device="cpu")


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory):
    from helpers import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory):
    from helpers import tiny_llama

    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def stack_folder(tmp_path_factory, tiny_bert_path):
    """A saved Transformer + Pooling + Dense + Normalize model on the tiny BERT (copy it before changing it)."""
    from embedstack import SentenceTransformer
    from embedstack.modules import Dense, Normalize, Pooling, Transformer

    folder = tmp_path_factory.mktemp("stack") / "model"
    modules = [Transformer(str(tiny_bert_path)), Pooling(32), Dense(32, 8), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder
