"""Ordering inputs so that batches hold inputs of similar length (less padding)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def input_length(item: Any) -> int:
    """A cheap length proxy: characters of a text, summed over a pair; 1 for anything else."""
    if isinstance(item, str):
        return len(item)
    if isinstance(item, (tuple, list)):
        return sum(input_length(part) for part in item)
    if isinstance(item, dict):
        return sum(input_length(value) for value in item.values())
    return 1


def longest_first(inputs: list[Any]) -> np.ndarray:
    """Indices of ``inputs`` ordered longest first (stable for equal lengths)."""
    lengths = np.fromiter((input_length(item) for item in inputs), dtype=np.int64, count=len(inputs))
    return np.argsort(-lengths, kind="stable")


def fixed_size_batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of ``order`` with at most ``batch_size`` indices each."""
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
