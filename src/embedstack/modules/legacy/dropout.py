"""Dropout on the sentence embedding (active in training only; a legacy module)."""

from __future__ import annotations

from typing import Any

from torch import nn

from embedstack.modules.base import Module
from embedstack.registry import ST, register_module


@register_module(f"{ST}.sentence_transformer.modules.dropout.Dropout", legacy=True)
class Dropout(Module):
    """Applies ``nn.Dropout(dropout)`` to ``sentence_embedding``; a no-op at inference."""

    config_keys: list[str] = ["dropout"]

    def __init__(self, dropout: float = 0.2, **kwargs: Any) -> None:
        super().__init__()
        if not 0 <= dropout <= 1:
            raise ValueError(f"Dropout probability must be between 0 and 1, got dropout={dropout!r}.")
        self.dropout = dropout
        self.dropout_layer = nn.Dropout(dropout)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Apply dropout to ``sentence_embedding`` (a no-op in eval mode)."""
        features["sentence_embedding"] = self.dropout_layer(features["sentence_embedding"])
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config."""
        self.save_config(output_path)
