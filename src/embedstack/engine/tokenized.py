"""Texts tokenized once, without padding: what the engine orders and batches by token length, and pads per batch.

Token batchers (the Transformer module, the native and onnx backends) return a :class:`TokenizedTexts`; the
engine, chunking and the server read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TokenizedTexts:
    """Token ids of N inputs, unpadded.

    Attributes:
        input_ids: N lists of token ids.
        token_type_ids: N lists of segment ids, or None when the tokenizer gives none.
        lengths: (N,) token counts.
        truncated: (N,) whether the tokenizer cut the input to ``max_seq_length``.
        prompt_length: Tokens of the prompt (for Pooling's include_prompt=False), or None.
    """

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    lengths: np.ndarray
    truncated: np.ndarray
    prompt_length: int | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def pad_batch(
    tokenized: TokenizedTexts, indices: np.ndarray, *, pad_id: int, pad_type_id: int = 0, left: bool = False
) -> dict[str, Any]:
    """Pad rows ``indices`` of ``tokenized`` into tensors, as a Hugging Face tokenizer pads a batch."""
    lengths = tokenized.lengths[indices]
    width = int(lengths.max()) if len(lengths) else 0
    input_ids = np.full((len(indices), width), pad_id, dtype=np.int64)  # (batch, seq)
    attention_mask = np.zeros((len(indices), width), dtype=np.int64)
    type_ids = tokenized.token_type_ids
    types = None if type_ids is None else np.full((len(indices), width), pad_type_id, dtype=np.int64)
    for row, (index, length) in enumerate(zip(indices, lengths)):
        span = slice(width - length, width) if left else slice(0, length)
        input_ids[row, span] = tokenized.input_ids[index]
        attention_mask[row, span] = 1
        if types is not None and type_ids is not None:
            types[row, span] = type_ids[index]
    features: dict[str, Any] = {"input_ids": torch.from_numpy(input_ids)}
    if types is not None:
        features["token_type_ids"] = torch.from_numpy(types)
    features["attention_mask"] = torch.from_numpy(attention_mask)
    features["modality"] = "text"
    if tokenized.prompt_length is not None:
        features["prompt_length"] = tokenized.prompt_length
    return features
