"""CLIPModel: the legacy module older CLIP folders name; a Transformer over a CLIP dual encoder."""

from __future__ import annotations

from typing import Any

from embedstack.modules.transformer.module import Transformer
from embedstack.registry import ST, register_module

CLIP_MODALITY_CONFIG = {
    "text": {"method": "get_text_features", "method_output_name": "pooler_output"},
    "image": {"method": "get_image_features", "method_output_name": "pooler_output"},
}


@register_module(f"{ST}.sentence_transformer.modules.clip_model.CLIPModel", legacy=True)
class CLIPModel(Transformer):
    """Text and images into one space through CLIP's ``get_text_features`` / ``get_image_features``.

    Kept so that folders whose modules.json names ``CLIPModel`` load; new models use :class:`Transformer`,
    which infers the same configuration from a CLIP backbone.
    """

    def __init__(self, model_name_or_path: str = "openai/clip-vit-base-patch32", **kwargs: Any) -> None:
        if "processor_name" in kwargs:
            kwargs["tokenizer_name_or_path"] = kwargs.pop("processor_name")
        if kwargs.get("modality_config") is None:
            kwargs["modality_config"] = {key: dict(value) for key, value in CLIP_MODALITY_CONFIG.items()}
            kwargs["module_output_name"] = "sentence_embedding"
        super().__init__(model_name_or_path, **kwargs)
