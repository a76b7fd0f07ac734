"""The model service: admission, tokenization off the event loop, the queue, the worker, cancellation.

Routes call :meth:`EmbeddingService.embed` (a SentenceTransformer, or a SparseEncoder's sparse rows) or
:meth:`EmbeddingService.score` (a CrossEncoder); they answer with vectors equal to ``model.encode``, or scores equal
to ``model.predict``, of the same inputs, or raise an :class:`ApiError` (429 when the queue is full, 503 when the
worker cannot serve, 422 for inputs too long with ``truncate: false``, 499 when the client went away). All go
through the same queue, limits and workers.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from embedstack.chunking import LongInputs
from embedstack.chunking.chunk import ChunkRows, pool_chunks
from embedstack.cross_encoder import CrossEncoder
from embedstack.cross_encoder.scoring import finish_scores
from embedstack.engine import available_cpus, limit_cpu_threads
from embedstack.errors import UnknownPromptError
from embedstack.prompts import resolve_prompt
from embedstack.server.errors import ApiError
from embedstack.server.metrics import ModelMetrics
from embedstack.server.model_kind import ServedModel, kind_of
from embedstack.server.occupancy import Occupancy
from embedstack.server.queue import Job, TokenQueue
from embedstack.server.settings import ServerSettings
from embedstack.server.tokens import BatchKey, RequestTokenizer, RequestTokens
from embedstack.server.worker import FailureCount, ModelWorker
from embedstack.sparse_encoder import SparseEncoder

# Two CPU workers, each with half the cores: two forward passes side by side beat one pass over every core
# (measured here 10% faster on a quiet machine, and far steadier on a shared one, where one busy core stalls
# a pass that spans both), and one round is assembled while the other runs.
CPU_WORKERS = 2
Inputs = list[str] | list[list[int]] | list[tuple[str, str]]  # texts, token ids, or a cross-encoder's pairs


@dataclass
class Embedded:
    """A request's answer in request order, its tokens and truncated inputs.

    ``vectors``: (inputs, dim) vectors, (inputs,) scores, or a sparse encoder's (inputs,) object array of
    (indices, values) pairs (``worker.sparse_rows``).
    """

    vectors: np.ndarray
    tokens: int
    truncated: int


class EmbeddingService:
    """Everything between a parsed request and its vectors (or a cross-encoder's scores).

    Args:
        model: The served model.
        settings: Limits and batch sizes.
        metrics: Where this model's queue depth, truncation and cancellations are counted.
        occupancy: The CPU's round slots, shared by every model the process serves (default: this model's own).
    """

    def __init__(
        self,
        model: ServedModel,
        settings: ServerSettings,
        metrics: ModelMetrics,
        *,
        occupancy: Occupancy | None = None,
    ) -> None:
        self.kind = kind_of(model)
        model.eval()
        if model.device.type == "cpu":
            limit_cpu_threads()
        self.model = model
        self.settings = settings
        self.metrics = metrics
        self.tokenizer = RequestTokenizer(model)
        cpu = model.device.type == "cpu"
        count = settings.workers or (CPU_WORKERS if cpu else 1)
        self.queue = TokenQueue(settings.max_queue_tokens, workers=count)
        # Each CPU worker gets its share of the cores as torch threads (set at start, restored at stop).
        self._torch_threads = (max(1, available_cpus() // count), torch.get_num_threads()) if cpu else None
        failures = FailureCount(settings.max_consecutive_failures)
        if self._torch_threads is None:
            occupancy = None  # on an accelerator the rounds do not share CPU cores
        elif occupancy is None:  # serving this model alone; a lone small round may use every core
            occupancy = cpu_occupancy(count)
        self.workers = [
            ModelWorker(
                model, self.queue, settings, metrics, tokenizer_lock=self.tokenizer.lock, failures=failures,
                occupancy=occupancy, name=f"embedstack-model-worker-{index}",
            )
            for index in range(count)
        ]  # fmt: skip
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedstack-tokenizer")
        self.dimension, self.normalized = _probe(model)  # also a warm-up: the model runs before serving
        metrics.queue_inputs.set_function(lambda: self.queue.inputs)
        metrics.queue_tokens.set_function(lambda: self.queue.tokens)

    def start(self) -> None:
        """Start the model workers."""
        if self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads[0])
        for worker in self.workers:
            worker.start()
        self.metrics.worker_up.set(1)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work, let the workers finish what they hold, and stop the tokenizer thread."""
        self.queue.close()
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._torch_threads is not None:
            torch.set_num_threads(self._torch_threads[1])

    def problem(self) -> str | None:
        """Why the service cannot answer now (a worker dead or stuck), or None when it can."""
        return next((problem for worker in self.workers if (problem := worker.problem()) is not None), None)

    def batch_key(self, prompt_name: str | None, input_type: str | None) -> BatchKey:
        """The prompt and task for a request, resolved as ``encode``, ``encode_query`` and ``encode_document``."""
        if prompt_name is not None and input_type is not None:
            raise ApiError(422, "Give prompt_name or input_type, not both.", "conflicting_options", "input_type")
        prompts = self.model.prompts
        try:
            prompt = resolve_prompt(prompts, self.model.default_prompt_name, prompt_name=prompt_name, task=input_type)
        except UnknownPromptError:
            names = ", ".join(repr(name) for name in prompts) or "none"
            raise ApiError(
                422, f"prompt_name {prompt_name!r} is not one of the model's prompts ({names}). Send one of those, "
                "or input_type instead.", "unknown_prompt", "prompt_name",
            ) from None  # fmt: skip
        return BatchKey(prompt=prompt or None, task=input_type)

    async def score(
        self, query: str, texts: list[str], *, raw: bool, truncate: bool, disconnected: asyncio.Future, field: str
    ) -> Embedded:
        """(texts,) scores of ``(query, text)`` pairs, as ``model.predict`` gives them (``raw``: the logits).

        The pairs wait in the same queue as any request's inputs; the activation is applied here, per request, so
        requests with and without ``raw_scores`` share forward passes.
        """
        model = self.model
        labels = int(getattr(model, "num_labels", 1))
        if labels != 1:
            raise ApiError(
                400, f"This model gives {labels} scores per pair (num_labels={labels}); reranking needs one score "
                "per pair. Serve a reranker with one label.", "not_a_reranker",
            )  # fmt: skip
        pairs = [(query, text) for text in texts]
        logits = await self.embed(
            pairs, self.batch_key(None, None), truncate=truncate, disconnected=disconnected, field=field
        )
        activation = None if raw else getattr(model, "activation_fn", None)
        scores = finish_scores(torch.from_numpy(logits.vectors), activation, labels, apply_softmax=False)
        return Embedded(scores.float().numpy().reshape(-1), logits.tokens, logits.truncated)

    async def embed(
        self,
        inputs: Inputs,
        key: BatchKey,
        *,
        truncate: bool,
        disconnected: asyncio.Future,
        field: str = "input",
        long_inputs: LongInputs | None = None,
    ) -> Embedded:
        """Vectors of ``inputs`` (texts or token ids) with the prompt/task of ``key`` (pairs: their raw logits).

        Args:
            inputs: Texts, token-id lists of this model's tokenizer, or (query, text) pairs for a cross-encoder.
            key: The prompt and task.
            truncate: Cut inputs longer than the model's window; False makes them a 422.
            disconnected: Done when the client went away; what still waits is then dropped.
            field: The request field holding the inputs, for error messages.
            long_inputs: With mode "pool", texts longer than the window are embedded as overlapping windows,
                pooled into one vector each (``truncate`` then does not apply).
        """
        problem = self.problem()
        if problem is not None:
            raise ApiError(503, problem, "worker_unavailable")
        if self.queue.full:
            raise self._queue_full(0)
        rows = None
        if long_inputs is not None and long_inputs.pooled:
            tokens, rows = await self._window_rows(inputs, key, long_inputs, field)
        else:
            tokens = await self._tokenize(inputs, key, field)
            await self._check_truncation(inputs, tokens, key, truncate, field)
        job = Job(tokens, asyncio.get_running_loop(), asyncio.get_running_loop().create_future())
        if job.waiting_tokens > self.queue.max_tokens:
            raise ApiError(
                413,
                f"This request has {job.waiting_tokens:,} tokens, more than the whole queue holds "
                f"({self.queue.max_tokens:,}, max_queue_tokens). Send fewer inputs per request.",
                "request_too_large",
            )
        if disconnected.done():
            self._cancelled(job.size)
            raise _client_gone()
        if not self.queue.put(job):
            raise self._queue_full(job.waiting_tokens)
        await self._wait(job, disconnected)
        if rows is not None and long_inputs is not None:
            vectors = torch.from_numpy(job.future.result())
            pooled = pool_chunks(rows, vectors, long_inputs.pooling, self.normalized).numpy()
            return Embedded(pooled, tokens.request_tokens, 0)
        truncated = int(tokens.truncated[tokens.inverse].sum())
        self.metrics.truncated_inputs.inc(truncated)
        return Embedded(job.future.result()[tokens.inverse], tokens.request_tokens, truncated)

    async def _window_rows(
        self, inputs: Inputs, key: BatchKey, options: LongInputs, field: str
    ) -> tuple[RequestTokens, ChunkRows]:
        if not isinstance(inputs[0], str) or self.model.token_batcher is None:
            raise ApiError(
                422, "long_inputs 'pool' takes texts, with a model that tokenizes them ahead (a Transformer); send "
                "texts, or leave long_inputs out.", "chunk_unsupported", "long_inputs",
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self.tokenizer.window_rows, inputs, key, options)
        except ValueError as exc:
            raise ApiError(422, f"long_inputs 'pool' cannot embed {field}: {exc}", "chunk_unsupported") from exc

    async def _tokenize(self, inputs: Inputs, key: BatchKey, field: str) -> RequestTokens:
        loop = asyncio.get_running_loop()
        if isinstance(inputs[0], (str, tuple)):
            try:
                return await loop.run_in_executor(self._executor, self.tokenizer.texts, inputs, key)
            except (ValueError, TypeError, UnicodeError) as exc:  # e.g. text the tokenizer cannot encode
                message = f"The tokenizer refused an input of {field}: {exc}"
                raise ApiError(422, message, "untokenizable", field) from exc
        if not self.tokenizer.takes_token_ids:
            raise ApiError(422, "This model cannot take token ids as input; send texts.", "token_ids_unsupported")
        if key != BatchKey():
            raise ApiError(
                422,
                f"This request would use the prompt {key.prompt or ''!r} and task {key.task!r} (from prompt_name, "
                "input_type or the model's default prompt), which apply to texts; with token ids, put the prompt's "
                "ids in front yourself and leave prompt_name and input_type out.",
                "prompt_with_token_ids",
            )
        bad = await loop.run_in_executor(self._executor, self.tokenizer.invalid_id, inputs)
        if bad is not None:
            index, token = bad
            raise ApiError(
                422, f"{field}[{index}] holds token id {token}, outside this model's vocabulary (0 to "
                f"{(self.tokenizer.vocab_size or 0) - 1}).", "invalid_token_id", field,
            )  # fmt: skip
        return await loop.run_in_executor(self._executor, self.tokenizer.token_ids, inputs)

    async def _check_truncation(
        self,
        inputs: Inputs,
        tokens: RequestTokens,
        key: BatchKey,
        truncate: bool,
        field: str,
    ) -> None:
        if truncate or not tokens.truncated.any():
            return
        index = int(np.flatnonzero(tokens.truncated[tokens.inverse])[0])
        item = inputs[index]
        if isinstance(item, (str, tuple)):
            loop = asyncio.get_running_loop()
            count = await loop.run_in_executor(self._executor, self.tokenizer.full_length, item, key)
        else:
            count = self.tokenizer.framed_length(item)
        counted = f"{count:,} tokens" if count is not None else "more tokens"
        what = f"{field}[{index}] with the query" if isinstance(item, tuple) else f"{field}[{index}]"
        raise ApiError(
            422,
            f"{what} has {counted}, more than the model's max_seq_length of {self.model.max_seq_length} "
            f"(and truncate is false). Shorten or split it, or send truncate: true to use only its first "
            f"{self.model.max_seq_length} tokens.",
            "input_too_long",
            field,
        )

    async def _wait(self, job: Job, disconnected: asyncio.Future) -> None:
        try:
            await asyncio.wait({job.future, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.queue.cancel(job)
            raise
        if not job.future.done():  # the client went away first: what still waits is not computed
            self._cancelled(self.queue.cancel(job))
            raise _client_gone()

    def _cancelled(self, dropped: int) -> None:
        self.metrics.cancelled_requests.inc()
        self.metrics.cancelled_inputs.inc(dropped)

    def _queue_full(self, tokens: int) -> ApiError:
        self.metrics.rejected.labels("queue_full").inc()
        rate = sum(worker.tokens_per_second for worker in self.workers)  # 0 until the first round finished
        wait = min(60, max(1, math.ceil((self.queue.tokens + tokens) / rate))) if rate else 1
        return ApiError(
            429,
            f"The server is busy: {self.queue.tokens:,} tokens are waiting and this request does not fit in the "
            f"queue's {self.queue.max_tokens:,} (max_queue_tokens). Retry after {wait} s.",
            "queue_full",
            headers={"Retry-After": str(wait)},
        )


def cpu_occupancy(workers: int = CPU_WORKERS) -> Occupancy:
    """The CPU's round slots for ``workers`` rounds at once, each with its share of the process's cores."""
    cores = available_cpus()
    return Occupancy(cores, max(1, cores // workers), slots=workers)


def _probe(model: ServedModel) -> tuple[int, bool]:
    """(width of a row, whether rows come out L2-normalized), from running the model once on "hello".

    A cross-encoder's rows are its raw scores: num_labels wide, never normalized. A sparse encoder's are
    vocabulary-wide (the width :meth:`SparseEncoder.get_embedding_dimension` reports), never normalized.
    """
    if isinstance(model, CrossEncoder):
        model.predict([("hello", "hello")], show_progress_bar=False)
        return model.num_labels, False
    if isinstance(model, SparseEncoder):
        weights = model.encode(["hello"], show_progress_bar=False)  # (1, vocab), sparse
        return int(model.get_embedding_dimension() or weights.shape[1]), False
    probe = model.encode(["hello"], convert_to_numpy=True)
    return int(probe.shape[1]), bool(abs(float(np.linalg.norm(probe[0])) - 1.0) < 1e-4)


def _client_gone() -> ApiError:
    return ApiError(499, "The client closed the connection before the answer.", "client_closed")
