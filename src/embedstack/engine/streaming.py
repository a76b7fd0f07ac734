"""Streaming: an iterable of inputs in, outputs out in input order, memory bounded by the window.

While the model encodes one window, a background thread dedupes and tokenizes the next.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from embedstack.engine.runner import EncodePlan, EncodeResult, prepare, run_prepared


def stream(model: Any, inputs: Iterable[Any], plan: EncodePlan, *, window_size: int) -> Iterator[EncodeResult]:
    """Encode ``inputs`` window by window; yields one :class:`EncodeResult` per window, in order."""
    if window_size < 1:
        raise ValueError(f"window_size must be a positive integer, got {window_size!r}.")
    source = iter(inputs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedstack-prefetch") as pool:
        pending = _submit(pool, model, source, plan, window_size)
        while pending is not None:
            prepared = pending.result()
            pending = _submit(pool, model, source, plan, window_size)  # tokenize the next window meanwhile
            yield run_prepared(model, prepared, plan)


def _submit(pool: ThreadPoolExecutor, model: Any, source: Iterator[Any], plan: EncodePlan, size: int) -> Future | None:
    window = list(itertools.islice(source, size))
    return pool.submit(prepare, model, window, plan) if window else None
