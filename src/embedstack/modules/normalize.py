"""Normalize: L2-normalize the sentence embedding."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F

from embedstack.modules.base import Module, check_feature_name, read_feature
from embedstack.registry import ST, register_module


@register_module(
    f"{ST}.base.modules.normalize.Normalize",
    legacy=True,
    aliases=(f"{ST}.sentence_transformer.modules.normalize.Normalize",),
)
class Normalize(Module):
    """Scale ``features[module_input_name]`` to unit L2 norm along the last axis."""

    config_keys = ["module_input_name", "module_output_name"]

    def __init__(
        self, module_input_name: str = "sentence_embedding", module_output_name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__()
        check_feature_name("Normalize", "module_input_name", module_input_name)
        check_feature_name("Normalize", "module_output_name", module_output_name, optional=True)
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Write the L2-normalized input feature to ``module_output_name``."""
        embeddings = read_feature(features, self.module_input_name, "Normalize")
        features[self.module_output_name] = F.normalize(embeddings, p=2, dim=-1)
        return features

    def legacy_config(self) -> tuple[str | None, dict[str, Any]]:
        """sentence-transformers < 5 wrote no config for Normalize."""
        return None, {}

    @classmethod
    def adapt_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The config without keys that are not ours (legacy folders hold no config, or other keys)."""
        return {key: value for key, value in config.items() if key in cls.config_keys}
