"""WordWeights: scale each token embedding by a per-word weight, e.g. idf (a legacy module)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from embedstack.modules.base import ModuleWithWeights
from embedstack.registry import ST, register_module

logger = logging.getLogger(__name__)


@register_module(f"{ST}.sentence_transformer.modules.word_weights.WordWeights", legacy=True)
class WordWeights(ModuleWithWeights):
    """Multiplies ``token_embeddings`` by a weight per ``input_ids`` entry and adds ``token_weights_sum``.

    Args:
        vocab: The tokenizer's vocabulary, in id order.
        word_weights: Weight per word (looked up as is, then lower-cased).
        unknown_word_weight: Weight of vocabulary words missing from ``word_weights``.
    """

    config_keys: list[str] = ["vocab", "word_weights", "unknown_word_weight"]

    def __init__(
        self, vocab: list[str], word_weights: dict[str, float], unknown_word_weight: float = 1, **kwargs: Any
    ) -> None:
        super().__init__()
        self.vocab = list(vocab)
        self.word_weights = dict(word_weights)
        self.unknown_word_weight = unknown_word_weight
        weights = [word_weights.get(word, word_weights.get(word.lower(), unknown_word_weight)) for word in vocab]
        missing = sum(word not in word_weights and word.lower() not in word_weights for word in vocab)
        logger.info("%d of %d words have no weight; they get %s", missing, len(vocab), unknown_word_weight)
        self.emb_layer = nn.Embedding(len(vocab), 1)
        self.emb_layer.load_state_dict({"weight": torch.tensor(weights, dtype=torch.float32).unsqueeze(1)})

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Scale each token embedding by its word's weight; add the weights' sum per input."""
        mask = features["attention_mask"].float()  # (batch, seq)
        token_weights = self.emb_layer(features["input_ids"]).squeeze(-1) * mask  # (batch, seq)
        features["token_embeddings"] = features["token_embeddings"] * token_weights.unsqueeze(-1)
        features["token_weights_sum"] = token_weights.sum(1)  # (batch,)
        return features
