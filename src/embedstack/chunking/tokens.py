"""Whole documents tokenized with character offsets, and the token windows chunking cuts them into.

The input module's fast tokenizer (``tokenizers.Tokenizer``, the backend of a Hugging Face fast tokenizer or the
native backend's own) is copied once with truncation and padding off, so a document keeps all its tokens and each
token its character span.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

_WHOLE_TOKENIZERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class DocumentTokens:
    """One input (prompt included) tokenized whole.

    Attributes:
        ids: Token ids: ``prefix`` leading tokens (special tokens, the prompt), the text's tokens, ``suffix``
            trailing special tokens.
        type_ids: Segment ids, one per token.
        offsets: (content, 2) character span in the text (without the prompt) of each of the text's tokens.
        prefix: Tokens before the text's first token.
        suffix: Tokens after the text's last token.
    """

    ids: list[int]
    type_ids: list[int]
    offsets: np.ndarray
    prefix: int
    suffix: int

    @property
    def content(self) -> int:
        """How many tokens the text itself has."""
        return len(self.ids) - self.prefix - self.suffix

    def row(self, start: int, end: int) -> tuple[list[int], list[int]]:
        """Ids and type ids of the text's tokens ``start:end`` framed by the prefix and the suffix."""
        keep = list(range(self.prefix)) + list(range(self.prefix + start, self.prefix + end))
        keep += list(range(len(self.ids) - self.suffix, len(self.ids)))
        return [self.ids[i] for i in keep], [self.type_ids[i] for i in keep]


def whole_tokenizer(input_module: Any) -> Any:
    """A copy of the input module's ``tokenizers.Tokenizer`` that neither truncates nor pads."""
    tokenizer = getattr(input_module, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if backend is None or not callable(getattr(backend, "encode_batch", None)) or not hasattr(backend, "to_str"):
        raise ValueError(
            f"long_inputs needs a fast tokenizer (one from the tokenizers library) to find token offsets; the "
            f"input module {type(input_module).__name__} has {type(tokenizer).__name__}. Use long_inputs='truncate', "
            "or save the model with a tokenizer.json."
        )
    copy = _WHOLE_TOKENIZERS.get(backend)
    if copy is None:
        copy = type(backend).from_str(backend.to_str())
        copy.no_truncation()
        copy.no_padding()
        _WHOLE_TOKENIZERS[backend] = copy
    return copy


def tokenize_whole(input_module: Any, texts: list[str], prompt: str | None) -> list[DocumentTokens]:
    """Tokenize ``prompt + text`` for each text, keeping every token and the text tokens' character spans."""
    prompt = prompt or ""
    encodings = whole_tokenizer(input_module).encode_batch([prompt + text for text in texts])
    documents = []
    for encoding in encodings:
        offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2) - len(prompt)  # (tokens, 2)
        special = np.asarray(encoding.special_tokens_mask, dtype=bool)
        content = np.flatnonzero(~special & (offsets[:, 0] >= 0) & (offsets[:, 1] > offsets[:, 0]))
        first, last = (int(content[0]), int(content[-1])) if len(content) else (len(special), len(special) - 1)
        ids = list(encoding.ids)
        documents.append(
            DocumentTokens(
                ids=ids,
                type_ids=list(encoding.type_ids),
                offsets=offsets[first : last + 1],
                prefix=first,
                suffix=len(ids) - 1 - last,
            )
        )
    return documents


def token_windows(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` of at most ``size`` tokens over ``count`` tokens, neighbours sharing ``overlap``.

    Example:
        >>> token_windows(10, 4, 1)
        [(0, 4), (3, 7), (6, 10)]
    """
    if size < 1:
        raise ValueError(f"A chunk window must hold at least one token, got {size}.")
    stride = max(1, size - min(overlap, size - 1))
    windows, start = [], 0
    while True:
        end = min(start + size, count)
        windows.append((start, end))
        if end >= count:
            return windows
        start += stride


def covering_spans(document: DocumentTokens, windows: list[tuple[int, int]], length: int) -> np.ndarray:
    """The character span of each token window, widened so that together they cover the whole text.

    A window spans from its first token's start to its last token's end; the first starts at 0, the last ends at
    ``length``, and a gap between two windows (whitespace between tokens) goes to the window before it.
    """
    spans = np.array([[document.offsets[a, 0], document.offsets[b - 1, 1]] for a, b in windows], dtype=np.int64)
    spans[0, 0] = 0
    spans[-1, 1] = length
    spans[:-1, 1] = np.maximum(spans[:-1, 1], spans[1:, 0])
    return spans.reshape(-1, 2)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences of ``text`` as character spans (split after ., ! or ? followed by whitespace); they cover it."""
    starts = [0] + [match.end() for match in _SENTENCE_END.finditer(text)]
    ends = starts[1:] + [len(text)]
    return [(start, end) for start, end in zip(starts, ends) if end > start] or [(0, len(text))]


def tokens_in_span(document: DocumentTokens, start: int, end: int) -> tuple[int, int]:
    """The text tokens ``[first, last)`` that start inside the character span ``[start, end)``."""
    token_starts = document.offsets[:, 0]
    return int(np.searchsorted(token_starts, start, "left")), int(np.searchsorted(token_starts, end, "left"))
