"""Similarity functions between embeddings: matrices (``similarity``) and row pairs (``pairwise``)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(embeddings: Any) -> torch.Tensor:
    """A 2-D tensor from a list, ndarray or tensor; 1-D inputs become one row."""
    if not isinstance(embeddings, torch.Tensor):
        if isinstance(embeddings, list) and embeddings and isinstance(embeddings[0], torch.Tensor):
            embeddings = torch.stack(embeddings)
        else:
            embeddings = torch.as_tensor(np.asarray(embeddings))
    if embeddings.dim() == 1:
        embeddings = embeddings.unsqueeze(0)
    if not embeddings.is_floating_point():
        embeddings = embeddings.float()
    return embeddings


def cos_sim(a: Any, b: Any) -> torch.Tensor:
    """Cosine similarity matrix, shape (len(a), len(b))."""
    a, b = to_tensor(a), to_tensor(b)
    return F.normalize(a, p=2, dim=1) @ F.normalize(b, p=2, dim=1).T


def dot_score(a: Any, b: Any) -> torch.Tensor:
    """Dot-product matrix."""
    a, b = to_tensor(a), to_tensor(b)
    return a @ b.T


def euclidean_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Euclidean distance matrix (higher is more similar)."""
    return -torch.cdist(to_tensor(a), to_tensor(b), p=2.0)


def manhattan_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Manhattan distance matrix."""
    return -torch.cdist(to_tensor(a), to_tensor(b), p=1.0)


def pairwise_cos_sim(a: Any, b: Any) -> torch.Tensor:
    """Cosine similarity of each row of ``a`` with the same row of ``b``."""
    a, b = to_tensor(a), to_tensor(b)
    return (F.normalize(a, p=2, dim=1) * F.normalize(b, p=2, dim=1)).sum(dim=-1)


def pairwise_dot_score(a: Any, b: Any) -> torch.Tensor:
    """Dot product of each row of ``a`` with the same row of ``b``."""
    return (to_tensor(a) * to_tensor(b)).sum(dim=-1)


def pairwise_euclidean_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Euclidean distance of each row of ``a`` to the same row of ``b``."""
    return -((to_tensor(a) - to_tensor(b)) ** 2).sum(dim=-1).sqrt()


def pairwise_manhattan_sim(a: Any, b: Any) -> torch.Tensor:
    """Negative Manhattan distance of each row of ``a`` to the same row of ``b``."""
    return -(to_tensor(a) - to_tensor(b)).abs().sum(dim=-1)


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
