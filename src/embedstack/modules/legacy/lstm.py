"""LSTM: a (bidirectional) LSTM over token embeddings (a legacy module)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embedstack.modules.base import ModuleWithWeights
from embedstack.registry import ST, register_module


@register_module(f"{ST}.sentence_transformer.modules.lstm.LSTM", legacy=True)
class LSTM(ModuleWithWeights):
    """Token embeddings -> LSTM outputs per token; reads ``sentence_lengths`` from the features.

    Args:
        embedding_dimension: Width of the incoming token embeddings.
        hidden_dim: LSTM hidden size (doubled in the output when bidirectional).
        num_layers: Stacked LSTM layers.
        dropout: Dropout between layers.
        bidirectional: Run a second LSTM right to left.
    """

    config_keys: list[str] = ["embedding_dimension", "hidden_dim", "num_layers", "dropout", "bidirectional"]
    config_file_name: str = "lstm_config.json"
    config_key_renames = {"word_embedding_dimension": "embedding_dimension"}

    def __init__(
        self,
        embedding_dimension: int,
        hidden_dim: int,
        num_layers: int = 1,
        dropout: float = 0,
        bidirectional: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.embedding_dimension = embedding_dimension
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.encoder = nn.LSTM(
            embedding_dimension,
            hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            batch_first=True,
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Replace ``token_embeddings`` by the LSTM outputs (padded back to the batch's width)."""
        lengths = torch.clamp(features["sentence_lengths"], min=1).cpu()  # (batch,)
        packed = nn.utils.rnn.pack_padded_sequence(
            features["token_embeddings"], lengths, batch_first=True, enforce_sorted=False
        )
        output = self.encoder(packed)[0]
        features["token_embeddings"] = nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0]
        return features

    def get_embedding_dimension(self) -> int:
        """The hidden size, doubled when bidirectional."""
        return self.hidden_dim * (2 if self.bidirectional else 1)
