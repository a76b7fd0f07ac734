"""Similarity functions between embeddings: matrices (``similarity``) and row pairs (``pairwise``)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(embeddings: Any) -> torch.Tensor:
    """A 2-D float tensor from a list, ndarray or tensor (dense or sparse); 1-D inputs become one row.

    Scores are computed in float32 at least: fp16/bf16 (and integer) inputs are upcast, as sentence-transformers
    does, so that similarities do not lose precision.
    """
    if not isinstance(embeddings, torch.Tensor):
        if isinstance(embeddings, list) and embeddings and all(isinstance(e, torch.Tensor) for e in embeddings):
            embeddings = torch.stack([e.coalesce() if e.is_sparse else e for e in embeddings])
        else:
            embeddings = torch.as_tensor(np.asarray(embeddings))
    if embeddings.dim() == 1:
        embeddings = embeddings.unsqueeze(0)
    if not embeddings.is_floating_point() or embeddings.dtype in (torch.float16, torch.bfloat16):
        embeddings = embeddings.float()
    return embeddings


def _normalize(embeddings: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm; a sparse matrix stays sparse."""
    if not embeddings.is_sparse:
        return F.normalize(embeddings, p=2, dim=-1)
    embeddings = embeddings.coalesce()
    indices, values = embeddings.indices(), embeddings.values()
    norms = values.new_zeros(embeddings.shape[0]).index_add_(0, indices[0], values**2).sqrt().clamp(min=1e-12)
    return torch.sparse_coo_tensor(
        indices, values / norms[indices[0]], embeddings.shape, check_invariants=False
    ).coalesce()


def _dense(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_dense() if tensor.is_sparse else tensor


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` for any mix of dense and sparse rows, as a dense (N, M) matrix."""
    if a.is_sparse and b.is_sparse:
        return _dense(torch.sparse.mm(a, b.t().coalesce()))
    if a.is_sparse:
        return torch.sparse.mm(a, _dense(b).t())
    if b.is_sparse:
        return torch.sparse.mm(b, a.t()).t()
    return a @ b.T


def _squared_norms(rows: torch.Tensor) -> torch.Tensor:
    return _dense(torch.sparse.sum(rows * rows, dim=1)) if rows.is_sparse else (rows * rows).sum(dim=1)


def cos_sim(a: Any, b: Any) -> torch.Tensor:
    """Cosine similarity matrix, shape (len(a), len(b))."""
    return _matmul(_normalize(to_tensor(a)), _normalize(to_tensor(b)))


def dot_score(a: Any, b: Any) -> torch.Tensor:
    """Dot-product matrix."""
    return _matmul(to_tensor(a), to_tensor(b))


def euclidean_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Euclidean distance matrix (higher is more similar)."""
    a, b = to_tensor(a), to_tensor(b)
    if not (a.is_sparse or b.is_sparse):
        return -torch.cdist(a, b, p=2.0)
    squared = _squared_norms(a).unsqueeze(1) - 2 * _matmul(a, b) + _squared_norms(b).unsqueeze(0)
    return -squared.clamp(min=0.0).sqrt()


def manhattan_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Manhattan distance matrix (sparse inputs are made dense first)."""
    return -torch.cdist(_dense(to_tensor(a)), _dense(to_tensor(b)), p=1.0)


def pairwise_cos_sim(a: Any, b: Any) -> torch.Tensor:
    """Cosine similarity of row i of ``a`` with row i of ``b``, shape (N,)."""
    return _dense(_pairwise_products(_normalize(to_tensor(a)), _normalize(to_tensor(b))))


def pairwise_dot_score(a: Any, b: Any) -> torch.Tensor:
    """Dot product of row i of ``a`` with row i of ``b``."""
    return _dense(_pairwise_products(to_tensor(a), to_tensor(b)))


def pairwise_euclidean_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Euclidean distance of row i of ``a`` to row i of ``b``."""
    difference = _dense(to_tensor(a)) - _dense(to_tensor(b))
    return -torch.linalg.vector_norm(difference, dim=-1)


def pairwise_manhattan_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Manhattan distance of row i of ``a`` to row i of ``b``."""
    return -(_dense(to_tensor(a)) - _dense(to_tensor(b))).abs().sum(dim=-1)


def pairwise_angle_sim(a: Any, b: Any) -> torch.Tensor:
    """AnglE similarity of row i of ``a`` with row i of ``b``: ``|cos + sin|`` of the unit rows.

    Dimensions ``k`` and ``k + D/2`` form the complex pairs of the sine term (an odd width gets a zero column), as
    in sentence-transformers' ``pairwise_angle_sim`` and AnglE (https://huggingface.co/papers/2309.12871).
    """
    a, b = _dense(to_tensor(a)), _dense(to_tensor(b))
    if a.shape[1] % 2:
        a, b = F.pad(a, (0, 1)), F.pad(b, (0, 1))
    a, b = F.normalize(a, p=2, dim=1), F.normalize(b, p=2, dim=1)
    first_a, last_a = torch.chunk(a, 2, dim=1)
    first_b, last_b = torch.chunk(b, 2, dim=1)
    sines = (last_a * first_b - first_a * last_b).sum(dim=1)
    return ((a * b).sum(dim=1) + sines).abs()


def pytorch_cos_sim(a: Any, b: Any) -> torch.Tensor:
    """The old name of :func:`cos_sim`."""
    return cos_sim(a, b)


def _pairwise_products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_sparse or b.is_sparse:
        product = (a * b) if a.is_sparse else (b * a)
        return torch.sparse.sum(product, dim=1) if product.is_sparse else product.sum(dim=-1)
    return (a * b).sum(dim=-1)


class SimilarityFunction(str, Enum):
    """The similarity functions a model can declare in ``similarity_fn_name``."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @staticmethod
    def possible_values() -> list[str]:
        """The accepted names."""
        return [member.value for member in SimilarityFunction]

    @staticmethod
    def to_similarity_fn(name: str | SimilarityFunction) -> Callable[[Any, Any], torch.Tensor]:
        """The matrix function of ``name``."""
        return _MATRIX[SimilarityFunction(name).value]

    @staticmethod
    def to_similarity_pairwise_fn(name: str | SimilarityFunction) -> Callable[[Any, Any], torch.Tensor]:
        """The row-pair function of ``name``."""
        return _PAIRWISE[SimilarityFunction(name).value]


_MATRIX = {"cosine": cos_sim, "dot": dot_score, "euclidean": euclidean_sim, "manhattan": manhattan_sim}
_PAIRWISE = {
    "cosine": pairwise_cos_sim,
    "dot": pairwise_dot_score,
    "euclidean": pairwise_euclidean_sim,
    "manhattan": pairwise_manhattan_sim,
}
SIMILARITY_FN_NAMES: tuple[str, ...] = tuple(_MATRIX)


def check_similarity_fn_name(name: str | SimilarityFunction) -> str:
    """The validated name; raises ValueError naming the accepted values."""
    value = name.value if isinstance(name, SimilarityFunction) else name
    if value not in _MATRIX:
        raise ValueError(f"similarity_fn_name {name!r} is not supported; choose one of {list(SIMILARITY_FN_NAMES)}.")
    return value
