"""Semantic textual similarity: Spearman correlation of model similarities with gold scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from embedstack.evaluation.datasets import STSPairs


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks starting at 1, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long vectors."""
    ra, rb = rankdata(np.asarray(a, dtype=np.float64)), rankdata(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra * ra).sum() * (rb * rb).sum()))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long vectors, in float64; NaN when either is constant (as SciPy)."""
    da, db = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    da, db = da - da.mean(), db - db.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (da * db).sum() / np.sqrt((da * da).sum() * (db * db).sum())
    return float(np.clip(value, -1.0, 1.0))


@dataclass
class STSResult:
    """What :func:`evaluate_sts` measured.

    Attributes:
        cosine_spearman: Spearman correlation (x100) of cosine similarities with the gold scores.
        pairs: The number of sentence pairs scored.

    """

    cosine_spearman: float
    pairs: int


def evaluate_sts(
    model: Any, pairs: STSPairs, *, batch_size: int | None = None, show_progress_bar: bool = False
) -> STSResult:
    """Cosine Spearman (x100) of ``model`` on ``pairs``, the figure MTEB reports for STS tasks."""
    unique = list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))
    embeddings = model.encode(unique, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=show_progress_bar)
    index = {text: row for row, text in enumerate(unique)}
    e1 = embeddings[[index[t] for t in pairs.sentences1]]
    e2 = embeddings[[index[t] for t in pairs.sentences2]]
    e1 = e1 / np.linalg.norm(e1, axis=1, keepdims=True).clip(min=1e-12)
    e2 = e2 / np.linalg.norm(e2, axis=1, keepdims=True).clip(min=1e-12)
    cosine = (e1 * e2).sum(axis=1)
    return STSResult(cosine_spearman=100 * spearman(cosine, np.asarray(pairs.scores)), pairs=len(pairs.scores))
