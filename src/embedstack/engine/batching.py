"""Ordering and cutting inputs into batches: by token length under a token budget, and deduplicated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

# The fixed cost of one forward pass (module calls, kernel launches, reading every weight once, per-pass tensors) in
# tokens' worth of compute: measured on CPU for all-MiniLM-L6-v2 as the time of a one-row pass over the time per
# token of a large one (``pass_overhead_tokens`` in benchmarks/pass_size.py). 2026-12-05, AVX-512 VNNI EPYC: 20-26
# tokens on one torch thread, 28-45 on two (torch and native backends alike); the 64 of 2026-11-29 (another CPU,
# before the native backend) cut too few passes: the server's rounds of ~100 STS-B sentences ran 2-4% slower
# (benchmarks/RESULTS.md).
PASS_OVERHEAD_TOKENS = 32


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
    order: np.ndarray,
    lengths: np.ndarray,
    *,
    max_batch_tokens: int,
    batch_size: int | None = None,
    pass_overhead_tokens: int = PASS_OVERHEAD_TOKENS,
) -> Iterator[np.ndarray]:
    """Cut ``order`` (longest first) into batches that fit a token budget, with as little padding as pays.

    A batch's padded size ``rows * longest`` stays within ``max_batch_tokens`` and its row count within
    ``batch_size`` (no row cap when None). A single input longer than the budget forms a batch of its own.

    Where the rows that would fit hold several lengths, the batch may end early, at a change of length: the
    rows that fit are split at changes of length in the way that costs least (a batch costs its padded tokens
    plus ``pass_overhead_tokens``, the fixed cost of one forward pass in tokens), and the first batch of that
    split is taken. So 200 six-token queries after 20 seven-token ones run as two batches with no padding,
    while a few rows of another length still join a batch when a pass of their own would cost more.

    Example:
        >>> lengths = np.array([7] * 20 + [6] * 200)
        >>> [len(batch) for batch in token_budget_batches(np.arange(220), lengths, max_batch_tokens=2048)]
        [20, 200]
        >>> lengths = np.array([7] * 2 + [6] * 20)  # two rows do not pay for a pass of their own
        >>> [len(batch) for batch in token_budget_batches(np.arange(22), lengths, max_batch_tokens=2048)]
        [22]
    """
    start = 0
    total = len(order)
    sorted_lengths = np.asarray(lengths)[order]
    while start < total:
        longest = max(int(sorted_lengths[start]), 1)
        rows = max(1, min(batch_size or total, max_batch_tokens // longest, total - start))
        rows = _first_cut(sorted_lengths[start : start + rows], pass_overhead_tokens)
        yield order[start : start + rows]
        start += rows


def _first_cut(lengths: np.ndarray, overhead: int) -> int:
    """Rows of ``lengths`` (non-increasing) for the first batch of the cheapest split at changes of length."""
    ends = np.flatnonzero(lengths[1:] != lengths[:-1]) + 1  # where a run of equal lengths ends
    if not len(ends):
        return len(lengths)
    bounds = [0, *ends.tolist(), len(lengths)]  # run j holds rows bounds[j]:bounds[j + 1]
    runs = len(bounds) - 1
    best = [0.0] + [float("inf")] * runs  # best[j]: least cost of rows before run j
    first = [0] * (runs + 1)  # first[j]: where the first batch of that split ends
    for j in range(1, runs + 1):
        for i in range(j):  # one batch over runs i..j-1, padded to run i's length
            cost = best[i] + overhead + (bounds[j] - bounds[i]) * max(int(lengths[bounds[i]]), 1)
            if cost < best[j]:
                best[j], first[j] = cost, (bounds[j] if i == 0 else first[i])
    return first[runs]


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
