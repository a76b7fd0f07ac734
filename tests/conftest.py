from __future__ import annotations

import os

import pytest

# One compute thread per test process (and per CLI subprocess, through OMP_NUM_THREADS). On the shared 2-core test
# machine a second intra-op thread waits on a busy core at every parallel op: with another test run going, the tiny
# backbones' tests ran 5-30x slower and even MiniLM encodes about 2x slower than with one thread. On an idle machine
# EMBEDSTACK_TEST_THREADS=2 is somewhat faster for the MiniLM parity tests.
TEST_THREADS = max(1, int(os.environ.get("EMBEDSTACK_TEST_THREADS", "1")))
os.environ["OMP_NUM_THREADS"] = str(TEST_THREADS)

import torch  # noqa: E402

torch.set_num_threads(TEST_THREADS)


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
