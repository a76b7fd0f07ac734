"""Loading custom modules written against older sentence-transformers contracts.

Two shapes exist in published models: a plain ``nn.Module`` with a one-argument ``load(path)``, and a custom
Transformer-like module (jina-embeddings-v3 style) whose ``__init__`` takes the model/tokenizer/config kwargs
under their old names. The reference builds the second from its config file; so does :func:`old_style_module`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from torch import nn

from embedstack.modules.transformer.config import KWARGS_DICTS, OLD_NAMES
from embedstack.modules.transformer.module import Transformer


def takes_path_only(load: Any) -> bool:
    """Whether ``load`` is an old one-argument ``load(path)`` (``**kwargs`` not counted)."""
    params = [p for p in inspect.signature(load).parameters.values() if p.kind is not p.VAR_KEYWORD]
    return len(params) == 1


def accepts_keyword(function: Any, name: str) -> bool:
    """Whether ``function`` takes the keyword ``name`` (by name, or through ``**kwargs``)."""
    params = inspect.signature(function).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def old_style_module(
    cls: type[Any], module_folder: Path, trust_remote_code: bool, hf_kwargs: dict[str, Any]
) -> nn.Module:
    """Build a module whose class has an old one-argument ``load``.

    A Transformer-like class is built from its config file (with the caller's kwargs and ``trust_remote_code``
    added, under the names its ``__init__`` uses), anything else through ``load(path)``.
    """
    init_kwargs = _old_transformer_init_kwargs(cls, module_folder, trust_remote_code, hf_kwargs)
    if init_kwargs is not None:
        return cls(str(module_folder), **init_kwargs)
    return cls.load(str(module_folder))


def _old_transformer_init_kwargs(
    cls: type[Any], module_folder: Path, trust_remote_code: bool, hf_kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    init = inspect.signature(cls.__init__).parameters
    old_names = set(OLD_NAMES.values()) & set(init)
    new_names = {"model_kwargs", "config_kwargs"} <= set(init)
    if not (old_names or new_names):
        return None
    config = Transformer.load_config(str(module_folder))
    for key in KWARGS_DICTS:
        config[key] = {**config.get(key, {}), "trust_remote_code": trust_remote_code, **(hf_kwargs.get(key) or {})}
    if old_names and not new_names:
        config = {OLD_NAMES.get(key, key): value for key, value in config.items()}
    for key in ("modality_config", "module_output_name"):  # defaults an old module may not know (as the reference)
        if key not in init:
            config.pop(key, None)
    if not any(p.kind is p.VAR_KEYWORD for p in init.values()):
        config = {key: value for key, value in config.items() if key in init}
    return config
