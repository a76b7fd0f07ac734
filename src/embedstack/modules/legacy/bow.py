"""BoW: a bag-of-words (optionally tf-idf weighted) sentence vector over a fixed vocabulary (a legacy module)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from embedstack.modules.base import InputModule
from embedstack.modules.legacy.word_tokenizers import WhitespaceTokenizer
from embedstack.registry import ST, register_module

logger = logging.getLogger(__name__)


@register_module(f"{ST}.sentence_transformer.modules.bow.BoW", legacy=True)
class BoW(InputModule):
    """Text -> a ``len(vocab)``-wide ``sentence_embedding`` of (weighted) word counts.

    Args:
        vocab: The words, in output order (duplicates are dropped).
        word_weights: Weight per word (looked up as is, then lower-cased), e.g. idf.
        unknown_word_weight: Weight of vocabulary words missing from ``word_weights``.
        cumulative_term_frequency: Add the weight for every occurrence (True) or set it once (False).
    """

    config_keys: list[str] = ["vocab", "word_weights", "unknown_word_weight", "cumulative_term_frequency"]
    save_in_root: bool = False

    def __init__(
        self,
        vocab: list[str],
        word_weights: dict[str, float] | None = None,
        unknown_word_weight: float = 1,
        cumulative_term_frequency: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.vocab = list(dict.fromkeys(vocab))
        self.word_weights = dict(word_weights or {})
        self.unknown_word_weight = unknown_word_weight
        self.cumulative_term_frequency = cumulative_term_frequency
        weights = self.word_weights
        self.weights = [weights.get(word, weights.get(word.lower(), unknown_word_weight)) for word in self.vocab]
        self.tokenizer = WhitespaceTokenizer(self.vocab, stop_words=(), do_lower_case=False)

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The (weighted) word counts of each text, as ``sentence_embedding``."""
        if prompt:
            inputs = self._prepend_prompt(inputs, prompt)
        vectors = torch.zeros(len(inputs), len(self.vocab), dtype=torch.float32)  # (batch, vocab)
        for row, text in enumerate(inputs):
            for token in self.tokenizer.tokenize(text):
                if self.cumulative_term_frequency:
                    vectors[row, token] += self.weights[token]
                else:
                    vectors[row, token] = self.weights[token]
        return {"sentence_embedding": vectors}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Return ``features`` as they are: :meth:`preprocess` already wrote the embedding."""
        return features

    def get_embedding_dimension(self) -> int:
        """The vocabulary size."""
        return len(self.vocab)

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config (the vocabulary and weights are in it)."""
        self.save_config(output_path)
