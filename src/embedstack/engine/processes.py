"""Encoding in several worker processes on one machine (sentence-transformers' multi-process pool).

Each worker holds a copy of the model on its device and runs the same engine (dedupe, token-budget batches) over
the chunks it takes from a shared queue; results come back tagged with their chunk number and are put back in
input order. On CPU the cores are split between the workers, so they never oversubscribe the machine. A worker's
error is raised in the caller with the worker's message; a pool the call started itself is always stopped, and
every pool still running when the interpreter exits is stopped then.

For one machine with several GPUs (or to keep a pool warm between calls) this is the tool; for corpora that need
several machines, or that must survive a worker dying, use Ray Data (see the README).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import queue
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp

from embedstack.engine.threads import available_cpus

logger = logging.getLogger(__name__)

Pool = dict[str, Any]  # {"input": queue, "output": queue, "processes": [process, ...]}
_RESULT_TIMEOUT_S = 5.0  # how often the caller checks that the workers are still alive while it waits
_running: weakref.WeakSet[Any] = weakref.WeakSet()
_calls = itertools.count()


def default_devices() -> list[str]:
    """Every CUDA device, else four CPU workers (as sentence-transformers)."""
    if torch.cuda.is_available():
        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return ["cpu"] * 4


def start_pool(model: Any, devices: Sequence[str] | None = None) -> Pool:
    """Start one worker process per entry of ``devices`` (e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu", "cpu"]``)."""
    devices = list(devices) if devices else default_devices()
    context = mp.get_context("spawn")
    inputs, outputs = context.Queue(), context.Queue()
    cpu_workers = sum(1 for device in devices if str(device).startswith("cpu"))
    threads = max(1, available_cpus() // max(1, cpu_workers))
    model.to("cpu")  # sent to each worker by pickling; each moves its copy to its own device
    processes = []
    for device in devices:
        process = context.Process(
            target=_worker,
            args=(model, str(device), threads, inputs, outputs),
            daemon=True,
            name=f"embedstack-{device}",
        )
        process.start()
        processes.append(process)
        _running.add(process)
    logger.info("Started %d encode workers on %s", len(processes), ", ".join(map(str, devices)))
    return {"input": inputs, "output": outputs, "processes": processes}


def stop_pool(pool: Pool) -> None:
    """Stop the pool's workers and release its queues (safe to call twice)."""
    for process in pool["processes"]:
        if process.is_alive():
            process.terminate()
    for process in pool["processes"]:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    for name in ("input", "output"):
        pool[name].close()
        pool[name].join_thread()


def encode_with_pool(
    pool: Pool, inputs: list[Any], chunk_size: int | None, encode_kwargs: dict[str, Any], method: str = "encode"
) -> Any:
    """Encode ``inputs`` on the pool's workers (with the model's ``method``: "encode", or a reranker's "predict").

    Returns:
        The results in input order: an ndarray, or a list when ``encode_kwargs`` ask for per-input outputs.
    """
    workers = len(pool["processes"])
    if chunk_size is None:
        chunk_size = max(1, min(math.ceil(len(inputs) / workers / 10), 5000))
    chunks = [inputs[start : start + chunk_size] for start in range(0, len(inputs), chunk_size)]
    call = next(_calls)  # results of an earlier call that failed part-way are recognized and dropped
    for index, chunk in enumerate(chunks):
        pool["input"].put((call, index, chunk, method, encode_kwargs))
    results: dict[int, Any] = {}
    while len(results) < len(chunks):
        try:
            answer_call, index, output, error = pool["output"].get(timeout=_RESULT_TIMEOUT_S)
        except queue.Empty:
            dead = [p.name for p in pool["processes"] if not p.is_alive()]
            if dead:
                raise RuntimeError(f"Encode workers {dead} stopped without answering; see their output.") from None
            continue
        if answer_call != call:
            continue
        if error is not None:
            _drain(pool["input"])  # the call's other chunks are not worth computing now
            raise RuntimeError(f"An encode worker failed on chunk {index}: {error}")
        results[index] = output
    ordered = [results[index] for index in range(len(chunks))]
    if ordered and isinstance(ordered[0], np.ndarray):
        return np.concatenate(ordered)
    return [item for output in ordered for item in output]


def run_on_processes(
    model: Any,
    inputs: list[Any],
    pool: Pool | None,
    devices: Sequence[str] | None,
    chunk_size: int | None,
    options: dict[str, Any],
    method: str = "encode",
) -> Any:
    """``model.<method>`` of ``inputs`` on ``pool``'s workers, or on one worker per device started and stopped here."""
    if pool is not None:
        return encode_with_pool(pool, inputs, chunk_size, options, method)
    own = start_pool(model, devices)
    try:
        return encode_with_pool(own, inputs, chunk_size, options, method)
    finally:
        stop_pool(own)


def _drain(pending: Any) -> None:
    try:
        while True:
            pending.get_nowait()
    except queue.Empty:
        pass


def _worker(model: Any, device: str, threads: int, inputs: Any, outputs: Any) -> None:
    """A worker's loop: encode each chunk it takes until it is stopped."""
    if device.startswith("cpu"):
        torch.set_num_threads(threads)
    model.to(device)
    while True:
        call, index, chunk, method, encode_kwargs = inputs.get()
        try:
            outputs.put((call, index, getattr(model, method)(chunk, device=device, **encode_kwargs), None))
        except Exception as exc:  # reported to the caller, who raises it; the worker takes the next chunk
            outputs.put((call, index, None, f"{type(exc).__name__}: {exc}"))


@atexit.register
def _stop_leftover_workers() -> None:
    for process in list(_running):
        if process.is_alive():
            process.terminate()
