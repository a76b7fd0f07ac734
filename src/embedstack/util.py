"""sentence-transformers' ``util`` functions for embeddings, under the same names.

Similarity matrices and row pairs, late-interaction (MaxSim) scores, and embedding quantization: code that
imported these from ``sentence_transformers.util`` imports them from here. The reference's search and mining
helpers (``semantic_search``, ``paraphrase_mining``, ``community_detection``, ``mean_maxsim``, ...) are not here.
"""

from typing import Any

from embedstack.maxsim import maxsim, maxsim_pairwise
from embedstack.quantization import quantize_embeddings
from embedstack.similarity import (
    SimilarityFunction,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pairwise_angle_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    pytorch_cos_sim,
)

__all__ = [
    "SimilarityFunction",
    "fullname",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "maxsim",
    "maxsim_pairwise",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pytorch_cos_sim",
    "quantize_embeddings",
]


def fullname(value: Any) -> str:
    """The dotted path of ``value``'s class, as sentence-transformers writes it (``torch.nn.modules....Sigmoid``)."""
    module = type(value).__module__
    if module is None or module == str.__module__:
        return type(value).__name__
    return f"{module}.{type(value).__name__}"
