"""The encode family of ``SentenceTransformer``: encode, encode_query/document, similarity, truncation flags."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import torch

from embedstack import encode_paths
from embedstack.base.query_document import QueryDocumentMethods
from embedstack.cache import EmbeddingStore
from embedstack.chunking import LongInputMode, LongInputs
from embedstack.encode_io import (
    as_batch,
    checked_options,
    convert_output,
    is_singular_input,
    legacy_inputs,
    progress,
    windows,
)
from embedstack.engine import EncodePlan, stream
from embedstack.engine.processes import Pool
from embedstack.quantization import Precision, quantize_embeddings
from embedstack.stack import ModuleStack

logger = logging.getLogger(__name__)

# What encode returns: an array (the default), a tensor, a list of tensors or of per-input feature dicts, or
# for a single input with output_value=None its feature dict.
EncodeOutput = np.ndarray | torch.Tensor | list[Any] | dict[str, Any]


class EncodeMixin(QueryDocumentMethods, ModuleStack):
    """Methods that turn inputs into embeddings; mixed into ``SentenceTransformer``.

    A :class:`~embedstack.stack.ModuleStack` (what the engine runs, an :class:`~embedstack.engine.protocol.Encoder`)
    that can encode; the model provides what is declared below: its prompts and settings, and its device.
    """

    prompts: dict[str, str]
    default_prompt_name: str | None
    truncate_dim: int | None
    embedding_cache: EmbeddingStore | None = None

    if TYPE_CHECKING:  # the model's properties, declared for readers and type checkers only

        @property
        def similarity_fn_name(self) -> str:
            """The similarity function's name."""

        @property
        def device(self) -> torch.device:
            """The device the model runs on."""

        def _resolve_prompt(self, prompt: str | None, prompt_name: str | None, task: str | None = None) -> str | None:
            """The prompt text a call uses (see :mod:`embedstack.prompts`)."""

        def _ready_to_run(self, device: str | torch.device | None) -> torch.device:
            """Move to ``device`` if asked, cap CPU threads, eval mode; the device it runs on."""

    @staticmethod
    def is_singular_input(inputs: Any) -> bool:
        """Whether ``inputs`` is one input rather than a batch.

        One input: a str, a dict, one conversation, a 0-d array. A batch: a list, tuple, ``datasets`` column, or a
        1-D+ array of strings or objects.
        """
        return is_singular_input(inputs)

    @overload
    def encode(
        self,
        inputs: Any = ...,
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int | None = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding"] = ...,
        precision: Precision | None = ...,
        convert_to_numpy: Literal[True] = ...,
        convert_to_tensor: Literal[False] = ...,
        device: str | torch.device | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        pool: Pool | None = ...,
        chunk_size: int | None = ...,
        max_batch_tokens: int | None = ...,
        **kwargs: Any,
    ) -> np.ndarray: ...

    @overload
    def encode(
        self,
        inputs: Any = ...,
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int | None = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding"] = ...,
        precision: Precision | None = ...,
        convert_to_numpy: bool = ...,
        *,
        convert_to_tensor: Literal[True],
        device: str | torch.device | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        pool: Pool | None = ...,
        chunk_size: int | None = ...,
        max_batch_tokens: int | None = ...,
        **kwargs: Any,
    ) -> torch.Tensor: ...

    @overload
    def encode(
        self,
        inputs: Any = ...,
        prompt_name: str | None = ...,
        prompt: str | None = ...,
        batch_size: int | None = ...,
        show_progress_bar: bool | None = ...,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = ...,
        precision: Precision | None = ...,
        convert_to_numpy: bool = ...,
        convert_to_tensor: bool = ...,
        device: str | torch.device | None = ...,
        normalize_embeddings: bool = ...,
        truncate_dim: int | None = ...,
        pool: Pool | None = ...,
        chunk_size: int | None = ...,
        max_batch_tokens: int | None = ...,
        **kwargs: Any,
    ) -> EncodeOutput: ...

    @torch.inference_mode()
    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Precision | None = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: Pool | None = None,
        chunk_size: int | None = None,
        max_batch_tokens: int | None = None,
        long_inputs: LongInputMode | LongInputs | None = None,
        **kwargs: Any,
    ) -> EncodeOutput:
        """Encode inputs into embeddings.

        Args:
            inputs: A string (gives a 1-D result) or a list of strings or text pairs.
            prompt_name: The name of a prompt in ``model.prompts`` to prepend.
            prompt: A prompt string to prepend (wins over ``prompt_name``; "" disables the default prompt).
            batch_size: The most inputs per forward pass. None (the default) lets the token budget decide: inputs
                are tokenized once, sorted by token count and cut into passes of at most ``max_batch_tokens``
                padded tokens, so short sentences run hundreds per pass and paragraphs a few. Giving a number
                caps the rows as in sentence-transformers (whose default is 32); vectors are the same either
                way, up to float rounding. Inputs the model cannot tokenize ahead (images, audio) run 32 per
                pass unless a number is given.
            show_progress_bar: Show a progress bar (default: when logging is at INFO or DEBUG).
            output_value: "sentence_embedding", "token_embeddings" (a list of (tokens, dim) tensors), or None
                (a list of per-input feature dicts).
            precision: "float32", "int8", "uint8", "binary" or "ubinary".
            convert_to_numpy: Return an ndarray (default); otherwise a list of tensors.
            convert_to_tensor: Return one tensor (overrides ``convert_to_numpy``).
            device: Run on this device (the model moves there); a list of devices (e.g. ``["cuda:0", "cuda:1"]``
                or ``["cpu", "cpu"]``) encodes in one worker process per device, started and stopped by this call.
            normalize_embeddings: L2-normalize the results (after truncation).
            truncate_dim: Keep the first ``truncate_dim`` dimensions (default: ``model.truncate_dim``).
            pool: Encode on the worker processes of ``start_multi_process_pool()``.
            chunk_size: Inputs per chunk handed to a worker (default: about a tenth of each worker's share).
            max_batch_tokens: Cap on padded tokens per batch (rows x longest input); ``batch_size`` still caps
                the rows. Default: 2,048 on CPU for a model of width 384 (less for wider models, where a pass's
                activations would spill out of the CPU caches; see ``embedstack.engine.pass_size``), 16,384 on
                a GPU.
            long_inputs: What happens to texts longer than ``max_seq_length``: "truncate" (the default; counted
                in a warning), "pool" (overlapping windows, pooled into one vector), "split" or "late" (one vector
                per chunk: a list of :class:`~embedstack.chunking.ChunkEmbeddings`), or a
                :class:`~embedstack.chunking.LongInputs` for the stride, pooling and late-chunking settings.
            **kwargs: Keyword arguments routed to module ``forward`` methods (see ``get_model_kwargs``).

        Returns:
            An (N, D) array by default, (D,) for a single string; with ``long_inputs`` "split" or "late", a list of
            ChunkEmbeddings (one ChunkEmbeddings for a single string).

        Example:
            >>> model.encode(["A man is eating food.", "A man is riding a horse."]).shape
            (2, 384)
            >>> model.encode("A man is eating food.").shape
            (384,)
        """
        inputs = legacy_inputs(inputs, kwargs, "encode")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        if output_value != "sentence_embedding":
            convert_to_tensor = convert_to_numpy = False
        if convert_to_tensor:
            convert_to_numpy = False
        precision = checked_options(batch_size, output_value, precision)
        module_kwargs = self.split_forward_kwargs(kwargs)
        singular = self.is_singular_input(inputs)
        inputs = as_batch(inputs, singular)
        long = LongInputs.of(long_inputs)
        if isinstance(device, (list, tuple)) and not inputs:
            device = None  # nothing to spread over processes
        if inputs and (pool is not None or isinstance(device, (list, tuple))):
            # The workers return float32; quantizing here takes the ranges from the whole input, as in one process.
            worker_options = dict(
                prompt_name=prompt_name, prompt=prompt, batch_size=batch_size, output_value=output_value,
                precision="float32", normalize_embeddings=normalize_embeddings, truncate_dim=truncate_dim,
                max_batch_tokens=max_batch_tokens, long_inputs=long_inputs, chunk_size=chunk_size, **kwargs,
            )  # fmt: skip
            pooled = encode_paths.on_processes(self, inputs, pool, device, worker_options)
            if precision != "float32":
                pooled = quantize_embeddings(pooled, precision=precision)
            pooled = convert_output(pooled, convert_to_tensor, convert_to_numpy, torch.device("cpu"))
            return pooled[0] if singular else pooled
        kinds = self.classify_inputs(inputs) if inputs else None  # each input's modality, decided once
        plan = self._plan(
            prompt=self._resolve_prompt(prompt, prompt_name),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            output_value=output_value,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim if truncate_dim is not None else self.truncate_dim,
            to_cpu=convert_to_numpy,
            device=device,
            preprocess_kwargs=kwargs,
            module_kwargs=module_kwargs,
        )
        with progress(show_progress_bar, len(inputs)) as plan.progress:
            if long.per_chunk:
                chunked = encode_paths.per_chunk(self, inputs, long, plan, precision)
                return chunked[0] if singular else chunked
            result = encode_paths.computed(self, inputs, plan, kinds, long, self.embedding_cache)
        embeddings = encode_paths.finished(
            self, result, precision, to_tensor=convert_to_tensor, to_numpy=convert_to_numpy
        )
        return embeddings[0] if singular else embeddings

    @torch.inference_mode()
    def encode_iter(
        self,
        inputs: Iterable[Any],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int | None = None,
        *,
        max_batch_tokens: int | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        window_size: int = 4096,
        show_progress_bar: bool = False,
        device: str | torch.device | None = None,
        long_inputs: LongInputMode | LongInputs | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Encode a stream of inputs, yielding one float32 vector per input, in input order.

        Memory stays bounded by ``window_size`` inputs, however long the stream: each window is deduplicated,
        tokenized (the next one in a background thread while the model runs), batched by token length and
        encoded. Use it for corpora that do not fit in memory. With a cache, or ``long_inputs`` other than
        "truncate", each window goes through :meth:`encode` (for "split" and "late", one ChunkEmbeddings per input).

        Example:
            >>> lines = (f"Sentence number {n}." for n in range(300))  # e.g. the lines of a file, read lazily
            >>> vectors = [vector for vector in model.encode_iter(lines, window_size=100)]
            >>> len(vectors), vectors[0].shape, vectors[0].dtype
            (300, (384,), dtype('float32'))
        """
        checked_options(batch_size, "sentence_embedding", None)
        if self.embedding_cache is not None or LongInputs.of(long_inputs).mode != "truncate":
            options = dict(prompt_name=prompt_name, prompt=prompt, batch_size=batch_size, long_inputs=long_inputs,
                           max_batch_tokens=max_batch_tokens, normalize_embeddings=normalize_embeddings,
                           truncate_dim=truncate_dim, device=device, **kwargs)  # fmt: skip
            for window in windows(inputs, window_size):
                yield from self.encode(window, show_progress_bar=show_progress_bar, **options)
            return
        plan = self._plan(
            prompt=self._resolve_prompt(prompt, prompt_name),
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim if truncate_dim is not None else self.truncate_dim,
            device=device,
            preprocess_kwargs=kwargs,
            module_kwargs=self.split_forward_kwargs(kwargs),
        )
        seen = cut = 0
        with progress(show_progress_bar, None) as plan.progress:
            if self.modalities == ["text"]:
                results = stream(self, inputs, plan, window_size=window_size)
            else:  # images, audio, ...: each window is checked and split by modality, as in encode()
                chunks = windows(inputs, window_size)
                results = (encode_paths.by_modality(self, w, plan, self.classify_inputs(w)) for w in chunks)
            for result in results:
                seen, cut = seen + len(result.truncated), cut + int(result.truncated.sum())
                yield from result.embeddings.float().numpy()
        encode_paths.report_truncation(self, cut, seen)

    def truncated(
        self,
        inputs: Any,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 256,
        **kwargs: Any,
    ) -> np.ndarray:
        """Which inputs are longer than ``max_seq_length`` and would be cut by encode (a bool array)."""
        singular = self.is_singular_input(inputs)
        items = [inputs] if singular else list(inputs)
        prompt = self._resolve_prompt(prompt, prompt_name)
        batcher = self.token_batcher
        tokenized = batcher.tokenize_unpadded(items, prompt=prompt, **kwargs) if batcher and items else None
        if tokenized is not None:
            flags = tokenized.truncated
        else:
            flags = np.zeros(len(items), dtype=bool)
            for start in range(0, len(items), batch_size):
                found = self.preprocess(items[start : start + batch_size], prompt=prompt, **kwargs).get("truncated")
                if found is not None:
                    flags[start : start + batch_size] = found.numpy()
        return flags[0] if singular else flags

    # ----- helpers ---------------------------------------------------------------------------------------
    def _plan(self, *, device: str | torch.device | None, **fields: Any) -> EncodePlan:
        return EncodePlan(device=self._ready_to_run(device), **fields)
