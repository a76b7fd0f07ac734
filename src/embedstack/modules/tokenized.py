"""Texts tokenized once, without padding: what the engine orders and batches by token length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
