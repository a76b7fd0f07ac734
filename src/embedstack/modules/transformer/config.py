"""What a Transformer module's ``sentence_bert_config.json`` may say.

Its file names over the years, renamed keys, and the Hugging Face keyword arguments a file may never set. Read
by the Transformer and the native backend.
"""

from __future__ import annotations

from typing import Any

# The module config file names the Transformer module has had, in the order they are tried.
CONFIG_FILE_NAMES: tuple[str, ...] = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)

# Old Transformer config keys (and constructor arguments) -> current ones.
KEY_RENAMES: dict[str, str] = {
    "model_args": "model_kwargs",
    "tokenizer_args": "processor_kwargs",
    "tokenizer_kwargs": "processor_kwargs",
    "config_args": "config_kwargs",
}
KWARGS_DICTS: tuple[str, ...] = ("model_kwargs", "processor_kwargs", "config_kwargs")
# The first old name of each kwargs dict: what an old custom Transformer-like module's __init__ calls it.
OLD_NAMES: dict[str, str] = {new: next(old for old, n in KEY_RENAMES.items() if n == new) for new in KWARGS_DICTS}

# Keys a model folder's files may not set in the Hugging Face kwargs: they would enable code, or make loading
# read or write outside the folder. The caller can still pass them.
FORBIDDEN_FILE_KWARGS = frozenset({"trust_remote_code", "cache_dir", "offload_folder", "token", "use_auth_token"})

TEXT_MODALITY_CONFIG: dict[str, dict[str, Any]] = {
    "text": {"method": "forward", "method_output_name": "last_hidden_state"}
}


def rename_legacy_keys(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with old keys (``model_args``, ``tokenizer_args``, ...) merged into the current ones."""
    config = dict(config)
    for old, new in KEY_RENAMES.items():
        if old in config:
            value = config.pop(old)
            config[new] = {**(value or {}), **(config.get(new) or {})}
    return config


def normalize_file_config(config: dict[str, Any]) -> dict[str, Any]:
    """A config read from a file: legacy keys renamed and ``FORBIDDEN_FILE_KWARGS`` stripped."""
    config = rename_legacy_keys(config)
    for key in KWARGS_DICTS:
        if key in config:
            config[key] = {k: v for k, v in (config[key] or {}).items() if k not in FORBIDDEN_FILE_KWARGS}
    return config
