"""A model folder's layout: building the modules listed in ``modules.json``, and writing a model folder.

Which class a type names (registry.py), how one module is built or saved (modules/module_io.py) and what a plain
Hugging Face folder becomes (modules/default_stack.py) live elsewhere; this file reads and writes the layout.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from embedstack.errors import ModelFormatError
from embedstack.modules.default_stack import default_modules
from embedstack.modules.module_io import LoadOptions, load_module, save_module
from embedstack.persistence.atomic import atomic_folder
from embedstack.persistence.layout import (
    MODEL_TYPE,
    read_model_config,
    read_modules_json,
    write_model_config,
    write_modules_json,
)

logger = logging.getLogger(__name__)


@dataclass
class LoadedFolder:
    """What a model folder holds: its modules, per-module forward kwargs, model config and model card."""

    modules: OrderedDict[str, nn.Module]
    module_kwargs: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    card_text: str | None = None


def load_folder(
    folder: Path,
    options: LoadOptions | None = None,
    *,
    model_type: str = MODEL_TYPE,
    default_stack: Callable[[Path, LoadOptions], OrderedDict[str, nn.Module]] = default_modules,
    keeps_config_of: tuple[str, ...] = (),
) -> LoadedFolder:
    """Build the modules of the ``model_type`` model in the local ``folder`` with ``options``.

    A folder without modules.json, or saved as another model kind, gets ``default_stack`` (for a
    SentenceTransformer: Transformer + mean Pooling). Converting a folder of another kind drops its
    ``config_sentence_transformers.json`` settings (prompts, similarity), unless that kind is in ``keeps_config_of``
    (a SparseEncoder keeps a SentenceTransformer's: its modules stay, under a sparse head).
    """
    options = options or LoadOptions()
    config = read_model_config(folder)
    card = folder / "README.md"
    card_text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else None
    entries = read_modules_json(folder)
    saved_type = config.get("model_type", MODEL_TYPE)  # older folders have none: embedding models, as in the reference
    if entries is None or saved_type != model_type:
        if entries is not None:
            logger.warning("Converting the %s model in %s to a %s", saved_type, folder, model_type)
            if saved_type not in keeps_config_of:
                config = {}
        return LoadedFolder(default_stack(folder, options), {}, config, card_text)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    module_kwargs: dict[str, list[str]] = {}
    for entry in entries:
        where = f"{folder / 'modules.json'} entry {entry.index}"
        modules[entry.name] = load_module(folder, entry.path, entry.type, where=where, options=options)
        module_kwargs[entry.name] = entry.kwargs
    first = next(iter(modules.values()))
    if not (callable(getattr(first, "preprocess", None)) or callable(getattr(first, "tokenize", None))):
        raise ModelFormatError(
            f"{folder / 'modules.json'} starts with a {type(first).__name__}, which cannot take raw inputs; the "
            "first module must be an input module (Transformer, StaticEmbedding, Router, ...). Fix modules.json."
        )
    return LoadedFolder(modules, module_kwargs, config, card_text)


def save_folder(
    model: Any,
    path: str | Path,
    *,
    safe_serialization: bool = True,
    legacy_layout: bool = False,
    card_text: str | None = None,
    keep_other_files: bool = False,
) -> None:
    """Write ``model`` to ``path`` atomically in the sentence-transformers 6.2 layout (or the legacy one).

    ``keep_other_files`` leaves what else the folder holds (a trainer's checkpoints) in place.
    """
    with atomic_folder(path, keep_others=keep_other_files) as staging:
        write_model_config(staging, model.model_config_dict())
        entries = []
        for index, (name, module) in enumerate(model.named_children()):
            in_root = index == 0 and getattr(module, "save_in_root", False)
            subfolder = "" if in_root else f"{index}_{type(module).__name__}"
            entry: dict[str, Any] = {"idx": index, "name": name, "path": subfolder}
            entry["type"] = save_module(
                module, staging, subfolder, safe_serialization=safe_serialization, legacy_layout=legacy_layout
            )
            if model.module_kwargs.get(name):
                entry["kwargs"] = list(model.module_kwargs[name])
            entries.append(entry)
        write_modules_json(staging, entries)
        if card_text is not None:
            (staging / "README.md").write_text(card_text, encoding="utf-8")
