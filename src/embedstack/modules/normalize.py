"""Normalize: L2-normalize the sentence embedding."""

from __future__ import annotations

import os
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

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config (none with ``legacy_layout``, as sentence-transformers < 5 did)."""
        self.save_config(output_path, legacy_layout=bool(kwargs.get("legacy_layout")))

    @classmethod
    def load_config(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        config_filename: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The config, or ``{}`` for a legacy folder; keys that are not ours are dropped."""
        # Legacy folders hold no config (or none at all); keys other than ours are dropped.
        config = super().load_config(model_name_or_path, subfolder=subfolder, config_filename=config_filename)
        return {key: value for key, value in config.items() if key in cls.config_keys}
