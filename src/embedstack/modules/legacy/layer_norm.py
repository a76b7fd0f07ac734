"""LayerNorm over the sentence embedding (a legacy module)."""

from __future__ import annotations

from typing import Any

from torch import nn

from embedstack.modules.base import ModuleWithWeights
from embedstack.registry import ST, register_module


@register_module(f"{ST}.sentence_transformer.modules.layer_norm.LayerNorm", legacy=True)
class LayerNorm(ModuleWithWeights):
    """Applies ``nn.LayerNorm(dimension)`` to ``sentence_embedding``."""

    config_keys: list[str] = ["dimension"]

    def __init__(self, dimension: int, **kwargs: Any) -> None:
        super().__init__()
        self.dimension = dimension
        self.norm = nn.LayerNorm(dimension)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Normalize ``sentence_embedding``."""
        features["sentence_embedding"] = self.norm(features["sentence_embedding"])
        return features

    def get_embedding_dimension(self) -> int:
        """The normalized width."""
        return self.dimension
