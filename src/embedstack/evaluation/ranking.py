"""Ranking a corpus for each query, and the IR metrics of the rankings (accuracy, precision, recall, MRR, NDCG, MAP).

The ranking order is total: higher score first, then the smaller corpus id. Ties therefore never depend on how
the corpus is cut into chunks or on the order ``torch.topk`` happens to return, and the metrics match
sentence-transformers' ``InformationRetrievalEvaluator``, which ranks the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
import torch

Hit = tuple[float, Any]
"""(score, corpus id) of one retrieved document."""


def corpus_id_ranks(corpus_ids: Sequence[Any]) -> np.ndarray:
    """The position of each corpus id in ascending id order: the tie-break key of the ranking, as integers."""
    ranks = np.empty(len(corpus_ids), dtype=np.int64)
    ranks[sorted(range(len(corpus_ids)), key=corpus_ids.__getitem__)] = np.arange(len(corpus_ids))
    return ranks


def top_k_rows(scores: torch.Tensor, k: int, tie_ranks: np.ndarray) -> tuple[list[list[int]], list[list[float]]]:
    """The ``k`` best columns of each row of ``scores`` (queries, documents), by score and then by ``tie_ranks``.

    ``torch.topk`` picks among equal scores arbitrarily, so a row whose ``k``-th score is shared by more columns
    than fit is ranked again in full, with the tie-break key; other rows keep topk's (unordered) choice.

    Returns:
        The column indices and their scores, ``k`` per row (in no particular order).
    """
    values, indices = torch.topk(scores, k, dim=1, largest=True, sorted=False)  # (queries, k)
    thresholds = values.min(dim=1, keepdim=True).values  # (queries, 1)
    tied = ((scores >= thresholds).sum(dim=1) > k).cpu().tolist()
    top_indices, top_values = indices.cpu().tolist(), values.cpu().tolist()
    for row in (row for row, has_ties in enumerate(tied) if has_ties):
        row_scores = scores[row].float().cpu().numpy()  # (documents,)
        order = np.lexsort((tie_ranks, -row_scores))[:k]
        top_indices[row], top_values[row] = order.tolist(), row_scores[order].tolist()
    return top_indices, top_values


def merge_hits(hits: list[Hit], new_hits: list[Hit], k: int) -> list[Hit]:
    """The ``k`` best of ``hits`` and ``new_hits``, best first (higher score, then smaller corpus id)."""
    return sorted(hits + new_hits, key=lambda hit: (-hit[0], hit[1]))[:k]


def dcg_at_k(relevances: Sequence[float], k: int) -> float:
    """Discounted cumulative gain of the first ``k`` relevances (position i counts 1 / log2(i + 2))."""
    return float(sum(relevance / np.log2(i + 2) for i, relevance in enumerate(relevances[:k])))


def ranking_metrics(
    rankings: Sequence[Sequence[Any]],
    relevant: Sequence[Collection[Any]],
    *,
    accuracy_at_k: Sequence[int],
    precision_recall_at_k: Sequence[int],
    mrr_at_k: Sequence[int],
    ndcg_at_k: Sequence[int],
    map_at_k: Sequence[int],
) -> dict[str, dict[int, float]]:
    """The metrics of each query's ranking, averaged over the queries.

    Args:
        rankings: Per query, the retrieved corpus ids, best first.
        relevant: Per query, its relevant corpus ids (not empty).
        accuracy_at_k: Cut-offs of accuracy (a relevant id among the first k).
        precision_recall_at_k: Cut-offs of precision and recall.
        mrr_at_k: Cut-offs of the mean reciprocal rank of the first relevant id.
        ndcg_at_k: Cut-offs of the normalized discounted cumulative gain (binary relevance).
        map_at_k: Cut-offs of mean average precision (normalized by min(k, relevant ids)).

    Returns:
        ``{"accuracy@k": {k: value}, "precision@k": ..., "recall@k": ..., "ndcg@k": ..., "mrr@k": ..., "map@k": ...}``.
    """
    cutoffs = {
        "accuracy@k": accuracy_at_k,
        "precision@k": precision_recall_at_k,
        "recall@k": precision_recall_at_k,
        "ndcg@k": ndcg_at_k,
        "mrr@k": mrr_at_k,
        "map@k": map_at_k,
    }
    per_query: dict[str, dict[int, list[float]]] = {metric: {k: [] for k in ks} for metric, ks in cutoffs.items()}
    for ranking, relevant_ids in zip(rankings, relevant):
        hits = [1 if corpus_id in relevant_ids else 0 for corpus_id in ranking]  # binary relevance, best first
        for metric, ks in cutoffs.items():
            for k in ks:
                per_query[metric][k].append(_METRICS[metric](hits, k, len(relevant_ids)))
    return {metric: {k: float(np.mean(values)) for k, values in by_k.items()} for metric, by_k in per_query.items()}


def _accuracy(hits: list[int], k: int, n_relevant: int) -> float:
    return float(any(hits[:k]))


def _precision(hits: list[int], k: int, n_relevant: int) -> float:
    return sum(hits[:k]) / k


def _recall(hits: list[int], k: int, n_relevant: int) -> float:
    return sum(hits[:k]) / n_relevant


def _ndcg(hits: list[int], k: int, n_relevant: int) -> float:
    return dcg_at_k(hits, k) / dcg_at_k([1] * n_relevant, k)


def _reciprocal_rank(hits: list[int], k: int, n_relevant: int) -> float:
    return 1 / (hits.index(1) + 1) if 1 in hits[:k] else 0.0


def _average_precision(hits: list[int], k: int, n_relevant: int) -> float:
    found, total = 0, 0.0
    for rank, hit in enumerate(hits[:k]):
        if hit:
            found += 1
            total += found / (rank + 1)
    return total / min(k, n_relevant)


_METRICS: dict[str, Callable[[list[int], int, int], float]] = {
    "accuracy@k": _accuracy,
    "precision@k": _precision,
    "recall@k": _recall,
    "ndcg@k": _ndcg,
    "mrr@k": _reciprocal_rank,
    "map@k": _average_precision,
}
"""Each metric of one query: f(binary relevances best first, k, number of relevant ids)."""
