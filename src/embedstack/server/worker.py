"""The model workers: threads that take rounds from the queue and run them through the engine.

A round's inputs (from many requests) are deduplicated, sorted by token length and cut into token-budget
forward passes by the engine (``embedstack.engine.runner``), exactly as ``model.encode`` does for one call;
rows are independent, so each request gets the vectors ``encode`` gives for its own inputs (a cross-encoder's
requests: the logits ``predict`` computes for their pairs).

Health: a worker is *dead* when its thread ended or ``max_consecutive_failures`` rounds failed in a row
over all workers (a model that fails every batch is broken, e.g. a lost CUDA device), and *stuck* while one
round runs longer than ``stuck_after_s``. Either way ``/health`` answers 503 and requests fail at once; a dead
worker stays dead until the server process is restarted (what a supervisor does when ``/health`` fails).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import numpy as np
import torch

from embedstack.engine.batching import dedupe
from embedstack.engine.pass_size import DEFAULT_MAX_BATCH_TOKENS
from embedstack.engine.runner import Prepared, run_prepared
from embedstack.engine.sparse_rows import csr_parts
from embedstack.engine.tokenized import TokenizedTexts
from embedstack.server.errors import ApiError
from embedstack.server.metrics import ModelMetrics
from embedstack.server.model_kind import ServedModel
from embedstack.server.occupancy import Occupancy, Slot
from embedstack.server.queue import RoundSize, Slice, TokenQueue
from embedstack.server.settings import ServerSettings
from embedstack.server.tokens import encode_plan

logger = logging.getLogger(__name__)
# On CPU, small forward passes of similar lengths beat large padded ones. Measured here on rounds of 64
# Wikipedia extracts: 68-70 texts/s with 1,024 padded tokens per pass, 54-64 with 2,048, 39-43 with 16,384
# (the engine's default); short sentences run as fast with 1,024 as with more (benchmarks/RESULTS.md).
CPU_BATCH_TOKENS = 1024
# A round on CPU: four such passes, or as many tokens as 64 inputs of the waiting length (at most 16,384). A
# round's requests are answered when it ends, so under load a request waits for the round running when it came,
# then its own; short rounds keep those waits alike. Long inputs need more of them in a round to sort by length.
# Measured here with 32 clients x 16 STS-B sentences: p99 2.3-2.9 s with 16,384-token rounds, 1.7-2.0 s with
# 4,096, same throughput; but 32 x 16 Wikipedia extracts lost 10-15% throughput with 4,096 (benchmarks/RESULTS.md).
CPU_ROUND = RoundSize(tokens=4 * CPU_BATCH_TOKENS, inputs=64, most=16384)
GPU_ROUND = RoundSize(tokens=16384)
RESTART_HINT = "Restart the server (a supervisor restarts it when GET /health answers 503)."


class WorkerBroken(RuntimeError):
    """Raised inside the worker when too many rounds failed in a row; ends the worker thread."""


class FailureCount:
    """Failed rounds in a row, over all workers (a round that succeeds anywhere resets it).

    Args:
        limit: The count at which the model is considered broken.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def succeeded(self) -> None:
        """A round went through: the count of failures in a row starts over."""
        with self._lock:
            self._count = 0

    def failed(self) -> int:
        """Count one failure; returns the count so far."""
        with self._lock:
            self._count += 1
            return self._count


class ModelWorker:
    """Runs the model on rounds of queued inputs, on its own thread.

    Args:
        model: The served model (in eval mode, on its device).
        queue: Where the rounds come from.
        settings: Batch sizes, the stuck threshold and the failure limit.
        metrics: Where batch sizes, computed inputs and failures are counted.
        tokenizer_lock: Held while the model tokenizes on this thread (models without a token batcher), since
            the tokenizer thread may use the same tokenizer.
        failures: Failed rounds in a row, shared by the workers of one server.
        occupancy: Rounds in flight and torch threads per round, shared by the CPU workers of every model the
            process serves (None on GPU, where torch threads do not matter).
        name: The thread's name.
    """

    def __init__(
        self,
        model: ServedModel,
        queue: TokenQueue,
        settings: ServerSettings,
        metrics: ModelMetrics,
        *,
        tokenizer_lock: threading.Lock,
        failures: FailureCount,
        occupancy: Occupancy | None = None,
        name: str = "embedstack-model-worker",
    ) -> None:
        self.model = model
        self.tokenizer_lock = tokenizer_lock
        self.queue = queue
        self.settings = settings
        self.metrics = metrics
        self.failures = failures
        self.occupancy = occupancy
        self.death: str | None = None
        self.busy_since: float | None = None
        self.tokens_per_second = 0.0  # recent throughput, for Retry-After
        cpu = model.device.type == "cpu"
        self.max_batch_tokens = settings.max_batch_tokens or (CPU_BATCH_TOKENS if cpu else DEFAULT_MAX_BATCH_TOKENS)
        if settings.window_tokens:
            self.round_size = RoundSize(settings.window_tokens)
        elif cpu:  # scaled to the pass size when max_batch_tokens is set
            scale = self.max_batch_tokens / CPU_BATCH_TOKENS
            self.round_size = RoundSize(int(CPU_ROUND.tokens * scale), CPU_ROUND.inputs, int(CPU_ROUND.most * scale))
        else:
            self.round_size = GPU_ROUND
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the worker thread to end."""
        self._thread.join(timeout)

    def problem(self) -> str | None:
        """Why the worker cannot serve now (dead or stuck), or None when it can."""
        if self.death is not None:
            return f"The model worker stopped: {self.death}. {RESTART_HINT}"
        if not self._thread.is_alive():
            return f"The model worker is not running. {RESTART_HINT}"
        started = self.busy_since
        if started is not None and time.monotonic() - started > self.settings.stuck_after_s:
            return (
                f"The model worker has been running one batch for {time.monotonic() - started:.0f} s "
                f"(stuck_after_s={self.settings.stuck_after_s:g}). It recovers by itself if the batch finishes; "
                f"otherwise: {RESTART_HINT}"
            )
        return None

    def _main(self) -> None:
        try:
            while True:
                if self.occupancy is None:
                    slices = self.queue.take(self.round_size)
                    if slices is None:
                        return
                    self._round([piece for piece in slices if not piece.job.cancelled])
                elif not self._admitted_round():
                    return
        except BaseException as exc:  # noqa: BLE001 - the thread must record why it ended, whatever it was
            self.death = f"{type(exc).__name__}: {exc}"
            logger.exception("The model worker stopped")
        finally:
            self.metrics.worker_up.set(0)
            error = ApiError(503, f"The model worker is not running. {RESTART_HINT}", "worker_unavailable")
            for job in self.queue.drain():
                job.settle(error)

    def _admitted_round(self) -> bool:
        """Wait for work, then for a CPU slot, then take the round and run it; False once the queue is closed.

        The round is taken once the slot is held, not before: while other models' rounds hold the cores, requests
        keep coming, and the round then holds them too (larger rounds, fewer passes) instead of the few that
        waited when the slot was asked for.
        """
        assert self.occupancy is not None
        if self.queue.wait() is None:
            return False
        waiting = time.monotonic()
        slot = self.occupancy.enter(tenant=self.queue)
        waited = time.monotonic() - waiting
        try:
            slices = self.queue.take(self.round_size, timeout=0)
            if slices is None:  # closed meanwhile, and empty
                self.occupancy.leave(slot)
                return False
            slices = [piece for piece in slices if not piece.job.cancelled]
            if slices and self._tokens(slices) <= self.max_batch_tokens:
                self.occupancy.widen(slot)  # one forward pass: every core when no other round runs
            if torch.get_num_threads() != slot.threads:  # per thread once set: the other workers keep theirs
                torch.set_num_threads(slot.threads)
        except BaseException:
            self.occupancy.leave(slot)
            raise
        self._round(slices, slot, waited)
        return True

    def _round(self, slices: list[Slice], slot: Slot | None = None, waited: float = 0.0) -> None:
        """Run ``slices`` and deliver their rows; ``slot`` (held, on CPU) is freed when the computation ends."""
        try:
            if not slices:
                return
            count = sum(piece.stop - piece.start for piece in slices)
            tokens = self._tokens(slices)
            self.busy_since = started = time.monotonic()
            vectors = self._compute(slices)
        except Exception as exc:
            self._failed(slices, exc)
            return
        finally:
            self.busy_since = None
            if slot is not None:
                assert self.occupancy is not None
                self.metrics.observe_slot(waited, self.occupancy.leave(slot))  # failed rounds held the cores too
        elapsed = time.monotonic() - started
        self.failures.succeeded()
        self.tokens_per_second = 0.8 * self.tokens_per_second + 0.2 * tokens / max(elapsed, 1e-6)
        self.metrics.observe_round(count, tokens, elapsed)
        row = 0
        for piece in slices:
            rows = piece.stop - piece.start
            piece.job.deliver(piece.start, vectors[row : row + rows])
            row += rows

    @staticmethod
    def _tokens(slices: list[Slice]) -> int:
        return sum(int(piece.job.cumulative[piece.stop] - piece.job.cumulative[piece.start]) for piece in slices)

    def _failed(self, slices: list[Slice], exc: Exception) -> None:
        count = self.failures.failed()
        self.metrics.failed_rounds.inc()
        logger.error("A batch of %d requests failed: %s", len({id(p.job) for p in slices}), exc, exc_info=exc)
        error = ApiError(500, f"The model failed on this request's batch ({type(exc).__name__}: {exc}).", "model_error")
        for piece in slices:
            piece.job.settle(error)
        if count >= self.failures.limit:
            raise WorkerBroken(f"{count} batches in a row failed; the last with {type(exc).__name__}: {exc}")

    @torch.inference_mode()
    def _compute(self, slices: list[Slice]) -> np.ndarray:
        """The rows of the round's inputs in slice order.

        (inputs, dim) float32 vectors, a cross-encoder's (pairs, labels) logits, or a sparse encoder's (inputs,)
        (indices, values) pairs (:func:`sparse_rows`). Inputs tokenized ahead are batched by token count; the others
        (models whose input module cannot tokenize ahead) are preprocessed by the engine batch by batch, on this
        thread, under the tokenizer lock.
        """
        tokens = slices[0].job.tokens
        inputs = [item for piece in slices for item in piece.job.tokens.unique[piece.start : piece.stop]]
        unique, inverse = dedupe(inputs)
        tokenized = _merge(slices, inverse, len(unique)) if tokens.tokenized is not None else None
        plan = encode_plan(
            self.model, tokens.key, batch_size=self.settings.batch_size, max_batch_tokens=self.max_batch_tokens
        )
        with self.tokenizer_lock if tokenized is None else contextlib.nullcontext():
            result = run_prepared(self.model, Prepared(unique, inverse, tokenized), plan)
        rows = result.embeddings
        return sparse_rows(rows) if rows.is_sparse else rows.float().numpy()


def sparse_rows(weights: torch.Tensor) -> np.ndarray:
    """A (rows, vocab) sparse COO tensor as a (rows,) object array of (indices int64, values float32) pairs.

    Each row's non-zero weights in ascending index order (as TEI lists them); nothing vocabulary-wide is built.
    Rows in an array slice, concatenate and index like dense vectors, so the queue and the service treat both alike.
    """
    bounds, index, weight = csr_parts(weights)
    index_array, values = index.numpy(), weight.float().numpy()  # (nnz,), (nnz,)
    rows = np.empty(weights.shape[0], dtype=object)
    for row, (start, stop) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
        rows[row] = (index_array[start:stop], values[start:stop])
    return rows


def _merge(slices: list[Slice], inverse: np.ndarray, unique: int) -> TokenizedTexts:
    """The token ids of the round's distinct inputs, in first-occurrence order."""
    ids: list[list[int]] = []
    types: list[list[int]] | None = []
    for piece in slices:
        tokenized = piece.job.tokens.tokenized
        assert tokenized is not None  # jobs reach this path only when tokenized ahead
        ids.extend(tokenized.input_ids[piece.start : piece.stop])
        if tokenized.token_type_ids is None:
            types = None
        elif types is not None:
            types.extend(tokenized.token_type_ids[piece.start : piece.stop])
    _, first = np.unique(inverse, return_index=True)  # the first position of each distinct input
    lengths = np.fromiter((len(ids[i]) for i in first), dtype=np.int64, count=unique)
    return TokenizedTexts(
        input_ids=[ids[i] for i in first],
        token_type_ids=None if types is None else [types[i] for i in first],
        lengths=lengths,
        truncated=np.zeros(unique, dtype=bool),
        prompt_length=getattr(slices[0].job.tokens.tokenized, "prompt_length", None),
    )
