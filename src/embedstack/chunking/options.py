"""What encode does with inputs longer than the model's window, and what "split" and "late" give back."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from embedstack.errors import close_matches

LongInputMode = Literal["truncate", "pool", "split", "late"]
DeprecatedLongInputMode = Literal["chunk", "chunks"]
ChunkPooling = Literal["mean", "max"]
LONG_INPUT_MODES: tuple[str, ...] = ("truncate", "pool", "split", "late")
# Old mode names, one letter apart, still read (with a FutureWarning) and never written: old name -> mode.
DEPRECATED_LONG_INPUT_MODES: dict[str, str] = {"chunk": "pool", "chunks": "split"}
_STORED_MODE_NAMES = {new: old for old, new in DEPRECATED_LONG_INPUT_MODES.items()}  # in cache and job keys
DEFAULT_OVERLAP = 32  # tokens two neighbouring chunk windows share
DEFAULT_LATE_OVERLAP = 64  # tokens of context two neighbouring backbone windows share in late chunking


@dataclass(frozen=True)
class LongInputs:
    """How ``encode(..., long_inputs=...)`` treats inputs longer than ``max_seq_length``.

    Args:
        mode: "truncate" (cut to the window, as sentence-transformers; the default), "pool" (overlapping token
            windows, each encoded, pooled into one vector per input), "split" (one vector per window, with its
            character span), or "late" (late chunking: the document runs through the backbone in windows as long
            as its position table allows, and each chunk's token span is pooled; one vector per chunk). The old
            names "chunk" (for "pool") and "chunks" (for "split") still work, with a FutureWarning.
        overlap: Tokens two neighbouring windows share ("pool", "split"); the stride is the window minus this.
        pooling: How "pool" pools its windows: "mean" (weighted by each window's token count) or "max"
            (element-wise). Vectors of normalized models are normalized again after pooling.
        chunk_tokens: Tokens per chunk (default: what fits in ``max_seq_length`` beside the special tokens and the
            prompt). In "late" mode, the size of the automatic chunks.
        boundaries: "late" mode without ``spans``: "tokens" (chunks of ``chunk_tokens``) or "sentences".
        spans: "late" mode: the chunks of each input as character spans ``[(start, end), ...]``, one list per input.
        late_window: "late" mode: tokens per backbone pass (default: the backbone's position table, e.g. 512).
        late_overlap: "late" mode: tokens of context two neighbouring backbone passes share.

    Example:
        >>> LongInputs.of("pool").mode, LongInputs.of("pool").pooling
        ('pool', 'mean')
    """

    mode: LongInputMode | DeprecatedLongInputMode = "truncate"
    overlap: int = DEFAULT_OVERLAP
    pooling: ChunkPooling = "mean"
    chunk_tokens: int | None = None
    boundaries: Literal["tokens", "sentences"] = "tokens"
    spans: Sequence[Sequence[tuple[int, int]]] | None = field(default=None, compare=False)
    late_window: int | None = None
    late_overlap: int = DEFAULT_LATE_OVERLAP

    def __post_init__(self) -> None:
        if self.mode in DEPRECATED_LONG_INPUT_MODES:
            new = DEPRECATED_LONG_INPUT_MODES[self.mode]
            warnings.warn(
                f"long_inputs mode {self.mode!r} is deprecated; use {new!r} (the same thing).",
                FutureWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "mode", new)
        if self.mode not in LONG_INPUT_MODES:
            hint = close_matches(str(self.mode), LONG_INPUT_MODES)
            raise ValueError(f"long_inputs mode {self.mode!r} is not one of {list(LONG_INPUT_MODES)}.{hint}")
        if self.pooling not in ("mean", "max"):
            raise ValueError(f"long_inputs pooling {self.pooling!r} is not 'mean' or 'max'.")
        if self.boundaries not in ("tokens", "sentences"):
            raise ValueError(f"long_inputs boundaries {self.boundaries!r} is not 'tokens' or 'sentences'.")
        for name in ("overlap", "late_overlap"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"long_inputs {name} must be a non-negative integer, got {getattr(self, name)!r}.")
        for name in ("chunk_tokens", "late_window"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"long_inputs {name} must be a positive integer or None, got {value!r}.")
        if self.spans is not None and self.mode != "late":
            raise ValueError(f"long_inputs spans are chunk boundaries for mode 'late'; mode is {self.mode!r}.")

    @classmethod
    def of(cls, value: LongInputs | str | None) -> LongInputs:
        """``value`` as options: None means "truncate", a string is a mode with the default settings."""
        if value is None:
            return cls()
        if isinstance(value, LongInputs):
            return value
        if isinstance(value, str):
            return cls(mode=value)  # type: ignore[arg-type]  # checked in __post_init__
        raise TypeError(f"long_inputs must be one of {list(LONG_INPUT_MODES)} or a LongInputs, got {value!r}.")

    @property
    def pooled(self) -> bool:
        """Whether long inputs are embedded in windows pooled into one vector each (mode "pool")."""
        return self.mode == "pool"

    @property
    def per_chunk(self) -> bool:
        """Whether each input gives several vectors ("split", "late") rather than one."""
        return self.mode in ("split", "late")

    def cache_key(self) -> dict[str, Any]:
        """The settings that change the vectors, for the embedding cache: every compared field.

        ``spans`` is left out: calls that give spans bypass the cache. The modes renamed "pool" and "split" keep
        their old names here, so embedding caches and Parquet job folders written before the rename still match.
        """
        key = {item.name: getattr(self, item.name) for item in fields(self) if item.compare}
        key["mode"] = _STORED_MODE_NAMES.get(key["mode"], key["mode"])
        return key


@dataclass
class ChunkEmbeddings:
    """The chunk vectors of one input, with the character span of each chunk in the input's text.

    The result of modes "split" and "late". ``embeddings[i]`` is the vector of ``text[spans[i][0]:spans[i][1]]``.
    Iterating gives ``(vector, (start, end))`` pairs, ``len()`` counts the chunks, and ``chunks[i]`` is the i-th
    pair. To put every chunk of many inputs in one vector index, use :func:`embedstack.chunking.flatten_chunks`.

    Attributes:
        embeddings: (chunks, dim) vectors.
        spans: (chunks, 2) character offsets ``[start, end)`` into the input text.
    """

    embeddings: np.ndarray
    spans: np.ndarray

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        start, end = self.spans[index]
        return self.embeddings[index], (int(start), int(end))

    def __iter__(self) -> Iterator[tuple[np.ndarray, tuple[int, int]]]:
        return (self[index] for index in range(len(self)))

    def texts(self, text: str) -> list[str]:
        """The chunks' text in ``text`` (the input these chunks came from)."""
        return [text[int(start) : int(end)] for start, end in self.spans]


def flatten_chunks(chunked: Sequence[ChunkEmbeddings]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every chunk of every input in one array, ready for a vector index.

    Returns:
        ``(embeddings, owners, spans)``: (M, dim) vectors, (M,) the input each chunk came from, (M, 2) its span.

    Example:
        >>> chunked = [ChunkEmbeddings(np.ones((2, 3)), np.array([[0, 4], [4, 9]])),
        ...            ChunkEmbeddings(np.zeros((1, 3)), np.array([[0, 5]]))]
        >>> vectors, owners, spans = flatten_chunks(chunked)
        >>> vectors.shape, owners.tolist(), spans[2].tolist()
        ((3, 3), [0, 0, 1], [0, 5])
    """
    if not chunked:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
    owners = np.concatenate([np.full(len(item), index, dtype=np.int64) for index, item in enumerate(chunked)])
    return (
        np.concatenate([item.embeddings for item in chunked]),
        owners,
        np.concatenate([item.spans for item in chunked]).astype(np.int64),
    )
