"""Streaming: an iterable of inputs in, outputs out in input order, memory bounded by the window.

While the model encodes one window, a background thread can dedupe and tokenize the next. That pays where a
core is free for it (a GPU runs the model, or torch leaves a core idle); on a CPU whose every core runs torch
threads, the tokenizer's threads would take cores from the forward pass mid-step, so windows are tokenized in
turn instead (measured both ways with ``benchmarks/tokenizer_thread.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from embedstack.engine.runner import EncodePlan, EncodeResult, prepare, run_prepared
from embedstack.engine.threads import available_cpus


def prefetch_pays(plan: EncodePlan) -> bool:
    """Whether to tokenize the next window in a background thread: a core is free for it."""
    on_cpu = plan.device is None or plan.device.type == "cpu"
    return not on_cpu or available_cpus() > torch.get_num_threads()


def stream(
    model: Any, inputs: Iterable[Any], plan: EncodePlan, *, window_size: int, prefetch: bool | None = None
) -> Iterator[EncodeResult]:
    """Encode ``inputs`` window by window; yields one :class:`EncodeResult` per window, in order.

    ``prefetch`` tokenizes the next window in a background thread while the model runs (None: when
    :func:`prefetch_pays`).
    """
    if window_size < 1:
        raise ValueError(f"window_size must be a positive integer, got {window_size!r}.")
    source = iter(inputs)
    if not (prefetch_pays(plan) if prefetch is None else prefetch):
        while window := list(itertools.islice(source, window_size)):
            yield run_prepared(model, prepare(model, window, plan), plan)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedstack-prefetch") as pool:
        pending = _submit(pool, model, source, plan, window_size)
        while pending is not None:
            prepared = pending.result()
            pending = _submit(pool, model, source, plan, window_size)  # tokenize the next window meanwhile
            yield run_prepared(model, prepared, plan)


def _submit(pool: ThreadPoolExecutor, model: Any, source: Iterator[Any], plan: EncodePlan, size: int) -> Future | None:
    window = list(itertools.islice(source, size))
    return pool.submit(prepare, model, window, plan) if window else None
