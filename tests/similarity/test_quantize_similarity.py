"""Quantization and similarity functions against sentence-transformers 6.2 in the same run: empty and multi-vector
inputs to quantize_embeddings, sparse and half-precision inputs to every similarity function."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import util as reference_util
from sentence_transformers.util.quantization import quantize_embeddings as reference_quantize

from embedstack import similarity as ours_similarity
from embedstack.quantization import quantize_embeddings


# ----- quantization -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary", "float32"])
def test_quantize_empty_and_multi_vector_inputs(precision):
    assert quantize_embeddings([], precision) == reference_quantize([], precision) == []
    empty = np.zeros((0, 12), dtype=np.float32)
    ours, theirs = quantize_embeddings(empty, precision), reference_quantize(empty, precision)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    rng = np.random.default_rng(0)
    documents = [rng.standard_normal((n, 12)).astype(np.float32) for n in (5, 0, 9)]
    ours, theirs = quantize_embeddings(documents, precision), reference_quantize(documents, precision)
    assert len(ours) == len(theirs) == 3
    for mine, reference in zip(ours, theirs):
        assert mine.dtype == reference.dtype and mine.shape == reference.shape
        np.testing.assert_array_equal(mine, reference)


# ----- similarity -------------------------------------------------------------------------------------------
SIMILARITIES = [
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
]


def _sparse_rows(rows: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    dense = torch.randn(rows, 16, generator=generator)
    return dense * (dense.abs() > 0.8)  # mostly zeros, as sparse embeddings are


@pytest.mark.parametrize("name", SIMILARITIES)
@pytest.mark.parametrize("kind", ["sparse-sparse", "sparse-dense", "dense-sparse", "fp16-bf16"])
def test_similarity_of_sparse_and_half_precision_inputs(name, kind):
    a, b = _sparse_rows(4, 0), _sparse_rows(4 if name.startswith("pairwise") else 3, 1)
    left, right = {
        "sparse-sparse": (a.to_sparse(), b.to_sparse()),
        "sparse-dense": (a.to_sparse(), b),
        "dense-sparse": (a, b.to_sparse()),
        "fp16-bf16": (a.half(), b.bfloat16()),
    }[kind]
    ours, theirs = getattr(ours_similarity, name)(left, right), getattr(reference_util, name)(left, right)
    assert ours.dtype == theirs.dtype == torch.float32
    assert not ours.is_sparse and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
