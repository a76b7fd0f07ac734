"""The native backend (plain BERT without transformers) gives the Transformer module's vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.backends.native import NativeTransformer
from embedstack.modules import Pooling, Transformer
from helpers import short_texts


@pytest.fixture(scope="module")
def saved(tiny_bert_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("native") / "model"
    model = SentenceTransformer(
        modules=[
            Transformer(str(tiny_bert_path), max_seq_length=20),
            Pooling(32, ["mean", "cls"], include_prompt=False),
        ],
        prompts={"query": "query: "},
        device="cpu",
    )
    model.save(str(folder))
    return folder


def test_native_matches_torch(saved):
    native = SentenceTransformer(str(saved), backend="native", device="cpu")
    torch_model = SentenceTransformer(str(saved), backend="torch", device="cpu")
    assert isinstance(native[0], NativeTransformer) and isinstance(torch_model[0], Transformer)
    assert repr(native) == repr(torch_model)
    assert native.max_seq_length == torch_model.max_seq_length == 20
    texts = short_texts()
    for options in ({}, {"prompt_name": "query"}, {"batch_size": 3}, {"output_value": "token_embeddings"}):
        a, b = native.encode(texts, **options), torch_model.encode(texts, **options)
        if isinstance(a, list):
            a, b = np.concatenate([t.numpy() for t in a]), np.concatenate([t.numpy() for t in b])
        np.testing.assert_allclose(a, b, atol=1e-5)
    pairs = [("first part", "second part"), ("a", "b c d")]
    np.testing.assert_allclose(native.encode(pairs), torch_model.encode(pairs), atol=1e-5)
    assert native.truncated(texts).tolist() == torch_model.truncated(texts).tolist()


def test_plain_hf_folder_and_legacy_lowercase(tiny_bert_path, tmp_path):
    folder = tmp_path / "plain"
    shutil.copytree(tiny_bert_path, folder)
    native = SentenceTransformer(str(folder), backend="native", device="cpu")
    np.testing.assert_allclose(
        native.encode(short_texts()), SentenceTransformer(str(folder)).encode(short_texts()), atol=1e-5
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12, "do_lower_case": True}))
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32}))
    native = SentenceTransformer(str(folder), backend="native", device="cpu")
    reference = SentenceTransformer(str(folder), device="cpu")
    assert native.max_seq_length == reference.max_seq_length == 12
    np.testing.assert_allclose(native.encode(["HeLLo THERE"]), reference.encode(["HeLLo THERE"]), atol=1e-5)


def test_other_backbones_fall_back_or_refuse(tiny_llama_path):
    assert isinstance(SentenceTransformer(str(tiny_llama_path), backend="auto")[0], Transformer)
    with pytest.raises(ValueError, match="plain BERT"):
        SentenceTransformer(str(tiny_llama_path), backend="native")


def test_native_models_cannot_be_saved(saved, tmp_path):
    with pytest.raises(ValueError, match="backend='torch'"):
        SentenceTransformer(str(saved), backend="native").save(str(tmp_path / "x"))


def test_native_start_does_not_import_transformers(saved):
    code = (
        "import sys; from embedstack import SentenceTransformer; "
        f"m = SentenceTransformer({str(saved)!r}, backend='native'); m.encode(['hi']); "
        "print('transformers' in sys.modules, 'torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
