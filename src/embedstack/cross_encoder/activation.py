"""A cross-encoder's activation function: what its scores pass through, and how it is named in a saved folder.

The folder names the class by its dotted path (``"torch.nn.modules.activation.Sigmoid"``); sentence-transformers
before 4.0 wrote it to ``config.json`` as ``sbert_ce_default_activation_function``, 4.x and 5.x under
``config.json``'s ``sentence_transformers`` key, 6.x to ``config_sentence_transformers.json``. A path outside
``torch.`` is code from the folder, imported only with ``trust_remote_code=True``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from torch import nn

from embedstack.errors import ModelFormatError

logger = logging.getLogger(__name__)


class ActivationImportError(ModelFormatError, ModuleNotFoundError):
    """A saved activation path names nothing importable (a ModuleNotFoundError, as in the reference)."""


def resolve_activation_fn(path: str, *, trust_remote_code: bool, where: str) -> Callable[..., Any] | None:
    """An instance of the class at the dotted ``path``; None (with a warning) when the path is not trusted.

    Raises:
        ActivationImportError: The path names nothing importable (``where`` names the file).
    """
    if not (trust_remote_code or path.startswith("torch.")):
        logger.warning(
            "Activation function path %r is not trusted, using default activation function instead. %s names it, "
            "and it is not a torch class: load the CrossEncoder with trust_remote_code=True to import it.",
            path,
            where,
        )
        return None
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ActivationImportError(
            f"{where} names the activation function {path!r}, which cannot be imported ({exc}). Fix the path, "
            "or pass activation_fn= when loading."
        ) from None
    return cls()


def saved_activation_path(model_config: dict[str, Any], hf_config: Any) -> tuple[str | None, str]:
    """The activation path a folder saved, and the file it came from (the newest layout first)."""
    if model_config.get("activation_fn"):
        return model_config["activation_fn"], "config_sentence_transformers.json"
    legacy = getattr(hf_config, "sentence_transformers", None)
    if isinstance(legacy, dict) and legacy.get("activation_fn"):
        return legacy["activation_fn"], "config.json key 'sentence_transformers'"
    oldest = getattr(hf_config, "sbert_ce_default_activation_function", None)
    if oldest:
        return oldest, "config.json key 'sbert_ce_default_activation_function'"
    return None, ""


def default_activation_fn(num_labels: int) -> nn.Module:
    """Sigmoid for one score per pair, identity for several labels (the reference's defaults)."""
    return nn.Sigmoid() if num_labels == 1 else nn.Identity()
