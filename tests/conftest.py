from __future__ import annotations

import os

import pytest

# One compute thread per test process (and per CLI subprocess, through OMP_NUM_THREADS): scripts/test.sh runs two
# test processes on the 2-core machine. With more threads than free cores a second intra-op thread waits on a busy
# core at every parallel op (the tiny backbones' tests ran 5-30x slower, MiniLM encodes about 2x slower).
# EMBEDSTACK_TEST_THREADS=2 suits a single test process on an idle 2-core machine.
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
def minilm_pool(minilm):
    """Two CPU worker processes holding MiniLM (the multi-process pool), started once: each start costs ~15 s."""
    pool = minilm.start_multi_process_pool(["cpu", "cpu"])
    yield pool
    minilm.stop_multi_process_pool(pool)
    assert not any(process.is_alive() for process in pool["processes"]), "stop_multi_process_pool left workers"


@pytest.fixture(scope="session")
def reference_minilm(minilm_path):
    from sentence_transformers import SentenceTransformer as Reference

    return Reference(str(minilm_path), device="cpu")


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory):
    from helpers import tiny_bert

    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def cross_encoder_path(tmp_path_factory):
    """A tiny random one-label BertForSequenceClassification, as a plain Hugging Face folder (copy it to change it)."""
    from helpers import tiny_cross_encoder

    return tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))


@pytest.fixture(scope="session")
def mlm_path(tmp_path_factory):
    """A tiny random BertForMaskedLM, as a plain Hugging Face folder (copy it to change it)."""
    from helpers import tiny_mlm

    return tiny_mlm(tmp_path_factory.mktemp("tiny-mlm"))


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


@pytest.fixture(scope="session")
def minilm_int8(minilm, tmp_path_factory):
    """all-MiniLM-L6-v2 exported to ONNX with its 8-bit int8 file (checked on this machine while exporting): the
    fp32 ``onnx/model.onnx`` and ``onnx/model_qint8_avx512_vnni.onnx``. Exported once per session, shared by the
    backend tests (copy it before changing it)."""
    return minilm.export_onnx(tmp_path_factory.mktemp("minilm-int8") / "minilm", quantize="int8")
