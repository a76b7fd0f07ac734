"""What the native and onnx backends share: each stands in for the text Transformer module of a folder.

A stand-in reads the folder's Transformer settings, reports the Transformer's config (so ``print(model)`` and the
saved ``sentence_bert_config.json`` are the Transformer's), and takes text only.
"""

from __future__ import annotations

from typing import Any

from embedstack.inputs import Modality
from embedstack.modules.base import InputModule
from embedstack.modules.transformer.config import TEXT_MODALITY_CONFIG
from embedstack.modules.transformer.support import prepare_tokenizer

STAND_IN_CONFIG_KEYS = ("transformer_task", "modality_config", "module_output_name")


class TransformerStandIn(InputModule):
    """An input module that runs a text Transformer folder without the Transformer module.

    Subclasses set ``backend`` and ``architecture``; ``exact`` says whether it gives the Transformer's vectors to
    the bit (then its repr is the Transformer's too).
    """

    transformer_task = "feature-extraction"
    module_output_name = "token_embeddings"
    backend: str
    exact: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.modality_config = {"text": dict(TEXT_MODALITY_CONFIG["text"])}

    @property
    def modalities(self) -> list[Modality]:
        """Text only."""
        return ["text"]

    @property
    def architecture(self) -> str:
        """The backbone's class name, as the Transformer module's repr shows it."""
        raise NotImplementedError

    def limit_and_case(self, tokenizer: Any, config: Any, settings: dict[str, Any], **kwargs: Any) -> int:
        """Lowercase ``tokenizer`` as ``settings`` (the folder's Transformer config) says; its token limit.

        As the Transformer module does it (``prepare_tokenizer``); ``kwargs`` go to ``prepare_tokenizer``.
        """
        lower = bool(settings.get("do_lower_case", False))
        return prepare_tokenizer(
            tokenizer, config, max_seq_length=settings.get("max_seq_length"), do_lower_case=lower, **kwargs
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The Transformer module config this module stands in for, as ``print(model)`` shows it."""
        return {key: getattr(self, key) for key in STAND_IN_CONFIG_KEYS}

    def __repr__(self) -> str:
        shown = dict(self.get_config_dict(), architecture=self.architecture)
        if not self.exact:
            shown["backend"] = self.backend
        return f"Transformer({shown})"
