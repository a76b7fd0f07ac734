"""The embedding cache with a SparseEncoder: a warm encode reads every row back (no forward pass) and gives the
tensor of an uncached encode; max_active_dims is part of the key; hits and misses mix in input order; the stored
rows (indices and values) survive empty rows and half-precision weights."""

from __future__ import annotations

import pytest
import torch

from embedstack import SparseEncoder
from embedstack.cache import EmbeddingStore
from embedstack.cache.sparse_rows import dump_row, load_row, split_rows, stack_rows
from embedstack.sparse_encoder import model as sparse_model

TEXTS = ["The cat sat on the mat.", "A dog ran in the park.", "Stocks fell sharply today.", "word " * 40]


@pytest.fixture(scope="module")
def uncached(mlm_path):
    return SparseEncoder(str(mlm_path), device="cpu")


def build(mlm_path, cache, **kwargs):
    return SparseEncoder(str(mlm_path), device="cpu", cache=cache, **kwargs)


def stored(path) -> int:
    return EmbeddingStore(path).info().vectors


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    a, b = a.coalesce(), b.coalesce()
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(a.indices(), b.indices()) and torch.equal(a.values(), b.values())


def no_forward_pass(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the engine ran, though the cache holds every row")

    monkeypatch.setattr(sparse_model, "run", refuse)


def test_a_warm_encode_reads_every_row_back(mlm_path, uncached, tmp_path, monkeypatch):
    cache = tmp_path / "cache.sqlite"
    cold = build(mlm_path, cache).encode(TEXTS)
    assert stored(cache) == len(TEXTS)
    assert_same(cold, uncached.encode(TEXTS))
    no_forward_pass(monkeypatch)
    warm = build(mlm_path, cache).encode(TEXTS)  # another model object, same weights: all hits
    assert warm.is_sparse and warm.is_coalesced()
    assert_same(warm, cold)
    assert stored(cache) == len(TEXTS)
    listed = build(mlm_path, cache).encode(TEXTS, convert_to_tensor=False)
    assert_same(torch.stack(listed), cold)


def test_max_active_dims_is_part_of_the_key(mlm_path, uncached, tmp_path, monkeypatch):
    cache = tmp_path / "cache.sqlite"
    model = build(mlm_path, cache)
    four = model.encode(TEXTS, max_active_dims=4)
    assert stored(cache) == len(TEXTS)
    assert_same(four, uncached.encode(TEXTS, max_active_dims=4))
    eight = model.encode(TEXTS, max_active_dims=8)  # not served from the rows of k=4
    assert stored(cache) == 2 * len(TEXTS)
    assert_same(eight, uncached.encode(TEXTS, max_active_dims=8))
    assert_same(model.encode(TEXTS), uncached.encode(TEXTS))  # nor is k=None
    assert stored(cache) == 3 * len(TEXTS)
    no_forward_pass(monkeypatch)
    assert_same(build(mlm_path, cache, max_active_dims=4).encode(TEXTS), four)  # the model's k: the same key


def test_hits_and_misses_mix_in_input_order(mlm_path, uncached, tmp_path):
    cache = tmp_path / "cache.sqlite"
    model = build(mlm_path, cache, max_active_dims=16)
    cold = model.encode(TEXTS)
    mixed = model.encode([TEXTS[2], "a new text", TEXTS[0], "a new text"])
    assert stored(cache) == len(TEXTS) + 1
    dense, expected = mixed.to_dense(), cold.to_dense()
    assert torch.equal(dense[0], expected[2]) and torch.equal(dense[2], expected[0])
    assert torch.equal(dense[1], dense[3])
    assert torch.equal(dense[1], uncached.encode("a new text", max_active_dims=16).to_dense())
    single = model.encode(TEXTS[1])  # a single string: one (vocab,) vector
    assert single.shape == expected[1].shape and torch.equal(single.to_dense(), expected[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_stored_rows_round_trip_with_empty_rows(dtype):
    indices = torch.tensor([[0, 0, 2, 2, 2], [1, 5, 0, 3, 6]])
    values = torch.tensor([1.5, -2.0, 0.25, 3.0, 7.0], dtype=dtype)
    matrix = torch.sparse_coo_tensor(indices, values, (4, 8), check_invariants=True)
    rows = [load_row(*dump_row(row)) for row in split_rows(matrix)]
    assert [len(row.indices) for row in rows] == [2, 0, 3, 0]
    assert_same(stack_rows(rows), matrix)
