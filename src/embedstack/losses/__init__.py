"""Training losses: each takes the batch's columns of features (and labels) and returns a scalar loss.

They embed the columns through :func:`embedstack.losses.passes.embed_columns` (length-sorted token-budget passes)
and compute the same quantity as sentence-transformers 6.2's loss of the same name.
"""

from __future__ import annotations

from embedstack.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
from embedstack.losses.cosent import CoSENTLoss
from embedstack.losses.cosine_similarity import CosineSimilarityLoss
from embedstack.losses.matryoshka import MatryoshkaLoss
from embedstack.losses.multiple_negatives_ranking import (
    MultipleNegativesRankingLoss,
    MultipleNegativesSymmetricRankingLoss,
)

__all__ = [
    "CachedMultipleNegativesRankingLoss",
    "CoSENTLoss",
    "CosineSimilarityLoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
]
