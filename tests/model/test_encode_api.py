"""encode's argument handling on a tiny model (fast; the real-model parity lives in test_parity_minilm)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from embedstack import SentenceTransformer
from embedstack.modules import Dense, Normalize, Pooling, Transformer


@pytest.fixture(scope="module")
def model(tiny_bert_path):
    transformer = Transformer(str(tiny_bert_path), max_seq_length=16)
    return SentenceTransformer(
        modules=[transformer, Pooling(32), Dense(32, 24), Normalize()],
        prompts={"query": "query: ", "passage": "passage: "},
        device="cpu",
    )


def test_shapes_and_types(model):
    assert model.encode("one").shape == (24,)
    assert model.encode(["one", "two"]).shape == (2, 24)
    assert model.encode(("one", "two")).shape == (2, 24)  # a tuple is a batch
    assert model.encode(np.array(["one", "two"])).shape == (2, 24)
    assert isinstance(model.encode(["one"], convert_to_tensor=True), torch.Tensor)
    as_list = model.encode(["one", "two"], convert_to_numpy=False)
    assert isinstance(as_list, list) and as_list[0].shape == (24,)
    assert model.encode([]).shape == (0,)


def test_order_is_restored(model):
    texts = ["short", "a much longer sentence than the others here", "mid length text", ""]
    batch = model.encode(texts, batch_size=2)
    for text, row in zip(texts, batch):
        np.testing.assert_allclose(row, model.encode(text), atol=1e-6)


def test_bad_arguments_are_explained(model):
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(["x"], batch_size=0)
    with pytest.raises(ValueError, match="precision 'int4'"):
        model.encode(["x"], precision="int4")
    with pytest.raises(ValueError, match=r"\['colour'\].*does not accept any additional keyword"):
        model.encode(["x"], colour="red")
    with pytest.raises(ValueError, match="Prompt name 'nope'"):
        model.encode(["x"], prompt_name="nope")
    with pytest.raises(ValueError, match="list of 3 items, which is not text"):
        model.encode([["a", "b", "c"]])
    with pytest.raises(ValueError, match="cannot take 'image' inputs.*takes text"):
        model.encode(np.zeros((4, 4, 3)))


def test_truncation_is_reported(model, caplog):
    long_text = "word " * 50
    with caplog.at_level(logging.WARNING, logger="embedstack"):
        model.encode(["short", long_text])
    assert "1 of 2 inputs were longer than max_seq_length=16" in caplog.text
    assert model.truncated(["short", long_text]).tolist() == [False, True]
    assert model.truncated(long_text) is np.True_ or model.truncated(long_text) == True  # noqa: E712


def test_prompts_and_query_document(model):
    texts = ["find me", "some document"]
    np.testing.assert_allclose(model.encode_query(texts), model.encode(texts, prompt="query: "), atol=1e-6)
    # "document" always exists (default ""), so it wins over "passage", as in sentence-transformers
    np.testing.assert_allclose(model.encode_document(texts), model.encode(texts, prompt=""), atol=1e-6)
    assert not np.allclose(model.encode(texts), model.encode(texts, prompt="query: "))


def test_truncate_dim_and_normalize(model):
    full = model.encode(["abc"])
    cut = model.encode(["abc"], truncate_dim=8)
    np.testing.assert_allclose(cut, full[:, :8], atol=1e-7)
    normed = model.encode(["abc"], truncate_dim=8, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-6)
    with model.truncate_embeddings(4):
        assert model.encode(["abc"]).shape == (1, 4)
        assert model.get_embedding_dimension() == 4
    assert model.get_embedding_dimension() == 24


def test_token_embeddings_are_trimmed(model):
    out = model.encode(["one", "one two three four"], output_value="token_embeddings")
    assert [t.shape[0] for t in out] == [3, 6]


def test_precision_dtypes(model):
    texts = [f"sentence number {i}" for i in range(8)]
    assert model.encode(texts, precision="int8").dtype == np.int8
    assert model.encode(texts, precision="uint8").dtype == np.uint8
    assert model.encode(texts, precision="binary").shape == (8, 3)
    assert model.encode(texts, precision="ubinary").dtype == np.uint8


def test_similarity_fn_name_validation(model):
    with pytest.raises(ValueError, match="'maxsim'"):
        model.similarity_fn_name = "maxsim"
    assert model.similarity_fn_name == "cosine"


def test_sequential_behaviour(model):
    assert len(model) == 4
    assert isinstance(model[1], Pooling)
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Dense", "Normalize"]
    with pytest.raises(ValueError, match="at least one module"):
        SentenceTransformer(modules=[])
    with pytest.raises(ValueError, match="Default prompt name 'x'"):
        SentenceTransformer(modules=[model[1]], default_prompt_name="x")
