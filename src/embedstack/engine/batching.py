"""Ordering and cutting inputs into batches: by token length under a token budget, and deduplicated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def input_length(item: Any) -> int:
    """A cheap length proxy for inputs that are not tokenized up front: characters, summed over parts."""
    if isinstance(item, str):
        return len(item)
    if isinstance(item, (tuple, list)):
        return sum(input_length(part) for part in item)
    if isinstance(item, dict):
        return sum(input_length(value) for value in item.values())
    return 1


def longest_first(lengths: np.ndarray) -> np.ndarray:
    """Indices ordered longest first (stable among equal lengths).

    The longest batch comes first, so an out-of-memory error shows at once rather than at the end.
    """
    return np.argsort(-np.asarray(lengths), kind="stable")


def fixed_size_batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order`` with at most ``batch_size`` indices each."""
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def token_budget_batches(
    order: np.ndarray, lengths: np.ndarray, *, max_batch_tokens: int, batch_size: int
) -> Iterator[np.ndarray]:
    """Cut ``order`` (longest first) into batches that fit a token budget.

    A batch's padded size ``rows * longest`` stays within ``max_batch_tokens`` and its row count within
    ``batch_size``. A single input longer than the budget forms a batch of its own.
    """
    start = 0
    total = len(order)
    while start < total:
        longest = max(int(lengths[order[start]]), 1)
        rows = max(1, min(batch_size, max_batch_tokens // longest, total - start))
        yield order[start : start + rows]
        start += rows


def dedupe(inputs: list[Any]) -> tuple[list[Any], np.ndarray]:
    """Unique inputs (first occurrence order) and, for each input, the index of its unique copy.

    Unhashable inputs (images, arrays, dicts) are kept as they are, each its own copy.
    """
    seen: dict[Any, int] = {}
    unique: list[Any] = []
    inverse = np.empty(len(inputs), dtype=np.int64)
    for position, item in enumerate(inputs):
        key = _key(item)
        if key is None:
            inverse[position] = len(unique)
            unique.append(item)
            continue
        index = seen.get(key)
        if index is None:
            index = seen[key] = len(unique)
            unique.append(item)
        inverse[position] = index
    return unique, inverse


def _key(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if isinstance(item, (tuple, list)) and all(isinstance(part, str) for part in item):
        return ("\x00pair",) + tuple(item)
    return None
