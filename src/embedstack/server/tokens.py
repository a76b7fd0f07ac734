"""Turning a request's inputs into token ids, once, before they wait in the queue.

Texts go through the model's own token batcher (the engine's ``tokenize_unpadded``), so the ids are exactly
what ``model.encode`` would compute. Token-id inputs (OpenAI's ``input: [[1, 2, 3]]``) are ids of this model's
tokenizer without special tokens; the server frames them with the special tokens the tokenizer adds to one
sequence and truncates them as it would. Models whose input module cannot tokenize ahead (no fast tokenizer,
non-Transformer input modules) take the general path: token counts are estimated and the worker's engine run
preprocesses them batch by batch. A cross-encoder's inputs are (query, text) pairs, tokenized together as
``CrossEncoder.predict`` tokenizes them.

Every function here runs on the server's single tokenizer thread, never on the event loop.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tokenizers import Tokenizer as RustTokenizer

from embedstack.chunking import LongInputs
from embedstack.chunking.chunk import ChunkRows, chunk_rows
from embedstack.engine.batching import dedupe
from embedstack.engine.runner import EncodePlan, OutputValue
from embedstack.engine.tokenized import TokenizedTexts
from embedstack.server.model_kind import ModelKind, ServedModel, kind_of
from embedstack.sparse_encoder import SparseEncoder
from embedstack.sparse_encoder.fused import fused_splade_forward

_NO_LIMIT = 1 << 30
# What the engine computes for each kind: vectors, a cross-encoder's raw logits, or sparse weights.
OUTPUT_VALUES: dict[ModelKind, OutputValue] = {
    "SentenceTransformer": "sentence_embedding",
    "CrossEncoder": "scores",
    "SparseEncoder": "sparse_embedding",
}
CHARS_PER_TOKEN_ESTIMATE = 4  # for models without a token batcher: queue accounting only


@dataclass(frozen=True)
class BatchKey:
    """What inputs must share to run in one forward pass: the prompt text and the task (query/document)."""

    prompt: str | None = None
    task: str | None = None

    @property
    def preprocess_kwargs(self) -> dict[str, Any]:
        """The keywords the input module's tokenization takes for this request."""
        return {"task": self.task} if self.task else {}


def encode_plan(
    model: ServedModel, key: BatchKey, *, batch_size: int | None = None, max_batch_tokens: int | None = None
) -> EncodePlan:
    """The engine plan for inputs of ``key``: what ``model.encode(inputs, prompt=key.prompt)`` would run.

    For a cross-encoder, what ``model.predict(pairs, prompt=key.prompt)`` runs: the raw (pairs, labels) logits,
    before the activation (each request applies it, or not, itself). For a sparse encoder, the (inputs, vocab)
    sparse weights after the model's ``max_active_dims``, made sparse pass by pass. The one place the server builds
    a plan, for tokenizing (chunk rows) and for the workers' forward passes.
    """
    return EncodePlan(
        prompt=key.prompt,
        batch_size=batch_size,
        max_batch_tokens=max_batch_tokens,
        output_value=OUTPUT_VALUES[kind_of(model)],
        truncate_dim=getattr(model, "truncate_dim", None),
        max_active_dims=getattr(model, "max_active_dims", None),
        device=model.device,
        preprocess_kwargs=key.preprocess_kwargs,
        module_kwargs=model.split_forward_kwargs(key.preprocess_kwargs, strict=False),
        forward=fused_splade_forward(model) if isinstance(model, SparseEncoder) else None,  # as SparseEncoder.encode
    )


@dataclass
class RequestTokens:
    """A request's distinct inputs, tokenized.

    Attributes:
        unique: The distinct inputs (texts, (query, text) pairs or token-id lists), first occurrence first.
        inverse: For each input of the request, the index of its distinct copy.
        tokenized: Their token ids, or None on the general path.
        lengths: (unique,) tokens per distinct input after truncation (estimated on the general path).
        truncated: (unique,) whether the input was cut to the model's window.
    """

    unique: list[Any]
    inverse: np.ndarray
    tokenized: TokenizedTexts | None
    lengths: np.ndarray
    truncated: np.ndarray
    key: BatchKey = field(default_factory=BatchKey)

    @property
    def request_tokens(self) -> int:
        """Tokens of every input of the request, duplicates included (what ``usage`` reports)."""
        return int(self.lengths[self.inverse].sum())


class RequestTokenizer:
    """The model's tokenization, as the server needs it.

    Args:
        model: The served model.
    """

    def __init__(self, model: ServedModel) -> None:
        self.model = model
        self.batcher = model.token_batcher
        limit = model.max_seq_length
        self.max_length = int(limit) if limit and math.isfinite(limit) else _NO_LIMIT
        self.lock = threading.Lock()  # tokenizers are not safe to call from two threads at once
        self._framing = self._probe_framing() if self.batcher is not None else None
        self._counter = _untruncated_copy(model.tokenizer)

    @property
    def takes_token_ids(self) -> bool:
        """Whether token-id inputs can be framed for this model."""
        return self._framing is not None

    @property
    def vocab_size(self) -> int | None:
        """The tokenizer's vocabulary size (token ids must be below it), or None when unknown."""
        tokenizer = self.model.tokenizer
        if hasattr(tokenizer, "get_vocab_size"):
            return int(tokenizer.get_vocab_size(with_added_tokens=True))
        return len(tokenizer) if hasattr(tokenizer, "__len__") else None

    def texts(self, texts: list[str] | list[tuple[str, str]], key: BatchKey) -> RequestTokens:
        """Tokenize distinct ``texts`` (or pairs) as ``model.encode`` (``predict``) with ``key.prompt`` would."""
        unique, inverse = dedupe(texts)
        with self.lock:
            tokenized = None
            if self.batcher is not None:
                tokenized = self.batcher.tokenize_unpadded(unique, prompt=key.prompt, **key.preprocess_kwargs)
            if tokenized is not None:
                return RequestTokens(unique, inverse, tokenized, tokenized.lengths, tokenized.truncated, key)
            truncated = self._truncated(unique, key)
        chars = np.fromiter((_chars(item) for item in unique), np.int64, len(unique)) + len(key.prompt or "")
        estimate = np.minimum(self.max_length, chars // CHARS_PER_TOKEN_ESTIMATE + 2)
        return RequestTokens(unique, inverse, None, estimate, truncated, key)

    def _truncated(self, unique: list[Any], key: BatchKey) -> np.ndarray:
        """Which inputs the model cuts, on the general path (a model without ``truncated`` reports none)."""
        truncated = getattr(self.model, "truncated", None)
        if truncated is None:
            return np.zeros(len(unique), dtype=bool)
        return np.asarray(truncated(unique, prompt=key.prompt, **key.preprocess_kwargs)).astype(bool)

    def window_rows(self, texts: list[str], key: BatchKey, options: LongInputs) -> tuple[RequestTokens, ChunkRows]:
        """Rows for long_inputs="pool": one per text that fits the window, overlapping windows for the others.

        The rows are queued like any request's inputs; the service pools each text's rows afterwards.
        """
        with self.lock:
            rows = chunk_rows(self.model, texts, options, encode_plan(self.model, key))
        tokenized = rows.tokenized
        count = len(tokenized.input_ids)
        unique: list[Any] = list(tokenized.input_ids)  # id lists: distinct by construction
        return RequestTokens(unique, np.arange(count), tokenized, tokenized.lengths, np.zeros(count, bool), key), rows

    def token_ids(self, inputs: list[list[int]]) -> RequestTokens:
        """Frame token-id inputs with the tokenizer's special tokens, truncating to the model's window."""
        if self._framing is None:
            raise ValueError("This model's input module cannot take token ids; check takes_token_ids first.")
        prefix, suffix, prefix_types, suffix_types, content_type = self._framing
        room = max(0, self.max_length - len(prefix) - len(suffix))
        ids = [prefix + list(row[:room]) + suffix for row in inputs]
        types = None
        if prefix_types is not None:
            types = [prefix_types + [content_type] * min(len(row), room) + (suffix_types or []) for row in inputs]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        truncated = np.fromiter((len(row) > room for row in inputs), dtype=bool, count=len(inputs))
        tokenized = TokenizedTexts(ids, types, lengths, truncated, None)
        # Token-id inputs are lists (unhashable), so each is its own distinct input.
        return RequestTokens(list(inputs), np.arange(len(inputs)), tokenized, lengths, truncated)

    def invalid_id(self, inputs: list[list[int]]) -> tuple[int, int] | None:
        """(input index, token id) of the first id outside the vocabulary, or None when all are valid."""
        vocabulary = self.vocab_size
        for index, row in enumerate(inputs):
            if min(row) < 0 or (vocabulary is not None and max(row) >= vocabulary):
                return index, next(t for t in row if t < 0 or (vocabulary is not None and t >= vocabulary))
        return None

    def full_length(self, text: str | tuple[str, str], key: BatchKey) -> int | None:
        """Tokens of ``text`` or a pair (with the prompt and special tokens) before truncation, or None when unknown.

        The prompt goes in front of the text, or of a pair's first text, as ``encode`` and ``predict`` put it.
        """
        if self._counter is None:
            return None
        first, second = (text, None) if isinstance(text, str) else text
        with self.lock:
            return len(self._counter.encode((key.prompt or "") + first, second).ids)

    def framed_length(self, ids: list[int]) -> int | None:
        """Tokens of a token-id input with its special tokens, before truncation."""
        if self._framing is None:
            return None
        return len(self._framing[0]) + len(ids) + len(self._framing[1])

    def _probe_framing(self) -> tuple[list[int], list[int], list[int] | None, list[int] | None, int] | None:
        """The special tokens around one sequence, found by tokenizing "" and "a".

        What they share in front is the prefix, what "" has after it the suffix (BERT: [CLS] / [SEP]; Llama: <s> /
        none; T5: none / </s>).
        """
        if self.batcher is None:
            return None
        with self.lock:
            probe = self.batcher.tokenize_unpadded(["", "a"])
        if probe is None:
            return None
        empty, letter = list(probe.input_ids[0]), list(probe.input_ids[1])
        start = 0
        while start < min(len(empty), len(letter)) and empty[start] == letter[start]:
            start += 1
        prefix, suffix = empty[:start], empty[start:]
        if len(letter) <= len(empty) or letter[len(letter) - len(suffix) :] != suffix:
            return None
        if probe.token_type_ids is None:
            return prefix, suffix, None, None, 0
        empty_types, letter_types = list(probe.token_type_ids[0]), list(probe.token_type_ids[1])
        return prefix, suffix, empty_types[:start], empty_types[start:], letter_types[start]


def _chars(item: str | tuple[str, ...]) -> int:
    return len(item) if isinstance(item, str) else sum(map(len, item))


def _untruncated_copy(tokenizer: Any) -> Any:
    """A private ``tokenizers.Tokenizer`` copy without truncation or padding, to count tokens of long inputs.

    Not chunking's ``whole_tokenizer``: that copy is shared with encode calls in the worker thread, and a tokenizer
    must not be called from two threads at once.
    """
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "to_str"):
        return None
    copy = RustTokenizer.from_str(backend.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy
