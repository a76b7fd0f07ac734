"""WeightedLayerPooling: token embeddings as a learned weighted mean of hidden layers (a legacy module)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from embedstack.modules.base import ModuleWithWeights
from embedstack.registry import ST, register_module


@register_module(f"{ST}.sentence_transformer.modules.weighted_layer_pooling.WeightedLayerPooling", legacy=True)
class WeightedLayerPooling(ModuleWithWeights):
    """Replaces ``token_embeddings`` by a weighted mean of ``all_layer_embeddings[layer_start:]``.

    The backbone must return all hidden states: load the Transformer with
    ``config_kwargs={"output_hidden_states": True}``. Without them the features pass through unchanged.
    """

    config_keys: list[str] = ["embedding_dimension", "layer_start", "num_hidden_layers"]
    config_key_renames = {"word_embedding_dimension": "embedding_dimension"}

    def __init__(
        self,
        embedding_dimension: int,
        num_hidden_layers: int = 12,
        layer_start: int = 4,
        layer_weights: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if not 0 <= layer_start <= num_hidden_layers:
            raise ValueError(f"layer_start={layer_start} must lie in 0..num_hidden_layers={num_hidden_layers}.")
        self.embedding_dimension = embedding_dimension
        self.layer_start = layer_start
        self.num_hidden_layers = num_hidden_layers
        if layer_weights is None:
            layer_weights = torch.ones(num_hidden_layers + 1 - layer_start)
        self.layer_weights = layer_weights if isinstance(layer_weights, nn.Parameter) else nn.Parameter(layer_weights)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Replace ``token_embeddings`` by the weighted mean of the layers from ``layer_start``."""
        layers = features.get("all_layer_embeddings")
        if layers is None:
            return features
        stacked = torch.stack(layers)[self.layer_start :]  # (layers, batch, seq, dim)
        weights = self.layer_weights[:, None, None, None]  # (layers, 1, 1, 1)
        features["token_embeddings"] = (weights * stacked).sum(0) / self.layer_weights.sum()
        return features

    def get_embedding_dimension(self) -> int:
        """The width of the token embeddings."""
        return self.embedding_dimension
