"""The InfoNCE log-likelihood shared by MultipleNegativesRankingLoss and its cached variant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Direction = Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
PartitionMode = Literal["joint", "per_direction"]
HardnessMode = Literal["in_batch_negatives", "hard_negatives", "all_negatives"]
DIRECTIONS: frozenset[str] = frozenset({"query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"})


@dataclass(frozen=True)
class RankingSettings:
    """How the in-batch ranking loss scores a batch (the reference's arguments, checked once)."""

    scale: float = 20.0
    directions: tuple[Direction, ...] = ("query_to_doc",)
    partition_mode: PartitionMode = "joint"
    hardness_mode: HardnessMode | None = None
    hardness_strength: float = 0.0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be a positive value, got {self.scale}.")
        if not self.directions or not set(self.directions) <= DIRECTIONS:
            raise ValueError(f"directions must be a non-empty subset of {sorted(DIRECTIONS)}, got {self.directions}.")
        if "query_to_doc" not in self.directions:
            raise ValueError("directions must include 'query_to_doc' (it holds the positive pair).")
        if self.partition_mode not in ("joint", "per_direction"):
            raise ValueError(f"partition_mode must be 'joint' or 'per_direction', got {self.partition_mode!r}.")
        if self.partition_mode == "per_direction" and set(self.directions) & {"query_to_query", "doc_to_doc"}:
            raise ValueError(
                "partition_mode='per_direction' needs every direction to include the positive pair, which "
                "'query_to_query' and 'doc_to_doc' never do. Use partition_mode='joint' with those directions."
            )
        if self.hardness_mode not in (None, "in_batch_negatives", "hard_negatives", "all_negatives"):
            raise ValueError(f"hardness_mode must be None or one of the three modes, got {self.hardness_mode!r}.")
        if self.hardness_strength < 0:
            raise ValueError(f"hardness_strength must be non-negative, got {self.hardness_strength}.")


def ranking_loss(
    queries: Tensor,
    docs: list[Tensor],
    rows: Tensor,
    settings: RankingSettings,
    similarity: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """Mean negative log-likelihood of each query in ``rows`` picking its own document among all candidates.

    ``queries`` (batch, dim); ``docs`` one (batch, dim) tensor per document column (the first holds the
    positives); ``rows`` the query indices scored here (all of them, or one mini-batch of the cached loss). The
    result is weighted by ``len(rows) / batch``, so the sum over mini-batches is the mean over the batch.
    """
    batch = queries.shape[0]
    docs_all = torch.cat(docs)  # (batch * columns, dim)
    local = torch.arange(len(rows), device=queries.device)
    own = torch.zeros(len(rows), batch, dtype=torch.bool, device=queries.device)
    own[local, rows] = True  # (rows, batch): each row's own query / positive
    scores: dict[str, Tensor] = {"query_to_doc": similarity(queries[rows], docs_all)}
    if "query_to_query" in settings.directions:
        scores["query_to_query"] = similarity(queries[rows], queries).masked_fill(own, -torch.inf)
    if "doc_to_query" in settings.directions:
        scores["doc_to_query"] = similarity(queries, docs[0][rows]).T
    if "doc_to_doc" in settings.directions:
        same_query = own.repeat(1, len(docs))
        scores["doc_to_doc"] = similarity(docs_all, docs[0][rows]).T.masked_fill(same_query, -torch.inf)
    penalty = _hardness_penalty(scores["query_to_doc"], own, len(docs), settings)
    scores = {key: value * settings.scale for key, value in scores.items()}
    if penalty is not None:
        scores["query_to_doc"] = scores["query_to_doc"] + penalty
    positives = scores["query_to_doc"][local, rows]
    if settings.partition_mode == "joint":
        log_z = torch.logsumexp(torch.cat(list(scores.values()), dim=1), dim=1)
    else:
        log_z = torch.stack([torch.logsumexp(matrix, dim=1) for matrix in scores.values()]).mean(dim=0)
    return -(positives - log_z).mean() * len(rows) / batch


def _hardness_penalty(query_to_doc: Tensor, own: Tensor, columns: int, settings: RankingSettings) -> Tensor | None:
    """``strength * sim`` (no gradient) on the negatives the hardness mode names, else None."""
    if settings.hardness_mode is None or settings.hardness_strength <= 0:
        return None
    penalty = settings.hardness_strength * query_to_doc.detach()  # (rows, batch * columns)
    own_doc = own.repeat(1, columns)
    batch = own.shape[1]
    if settings.hardness_mode == "hard_negatives":
        excluded = ~own_doc
        excluded[:, :batch] = True  # only the explicit negatives' columns
    else:
        excluded = own_doc.clone()
        if settings.hardness_mode == "all_negatives":
            excluded[:, batch:] = False
    return penalty.masked_fill(excluded, 0.0)
