"""What a Transformer module's ``sentence_bert_config.json`` may say.

Its file names over the years, renamed keys, the Hugging Face keyword arguments a file may never set, and how its
``modality_config`` reads back (compound keys, files from before modalities). Read by the Transformer and the
native backend.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from embedstack.inputs import MODALITY_KEYS

logger = logging.getLogger(__name__)

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

# What each transformer_task loads (a transformers Auto class) and its text entry and output feature, as in
# sentence-transformers: an embedding backbone's token vectors, a classifier's logits as a cross-encoder's scores.
TASK_AUTO_CLASSES: dict[str, str] = {
    "feature-extraction": "AutoModel",
    "sequence-classification": "AutoModelForSequenceClassification",
    "fill-mask": "AutoModelForMaskedLM",
}
TASK_DEFAULTS: dict[str, tuple[dict[str, dict[str, Any]], str]] = {
    "feature-extraction": (TEXT_MODALITY_CONFIG, "token_embeddings"),
    "sequence-classification": ({"text": {"method": "forward", "method_output_name": "logits"}}, "scores"),
    # A sparse encoder's MLM: its vocabulary logits per token, which SpladePooling pools.
    "fill-mask": ({"text": {"method": "forward", "method_output_name": "logits"}}, "token_embeddings"),
}


FEATURES = "feature-extraction"

# The modalities a modality_config key (or each part of a compound "image+text" key) may name.
MODALITY_NAMES = MODALITY_KEYS | {"message"}


def restore_modality_config(config: dict[str, Any]) -> dict[str, Any]:
    """A saved Transformer config with its ``modality_config`` as the module holds it, as the reference reads it.

    Compound keys become tuples (``"image+text"`` -> ``("image", "text")``) and keys naming no known modality are
    dropped with a warning. A non-empty config without ``modality_config`` was saved before modalities existed
    (sentence-transformers < 6), when the module was text-only: it gets the text-only entry, so a backbone whose
    tokenizer has a chat template is still run on plain text as it was then. An empty config (no file, a plain
    Hugging Face folder) is left to inference from the backbone.
    """
    config = dict(config)
    if config and "modality_config" not in config:
        modality_config, output_name = TASK_DEFAULTS.get(str(config.get("transformer_task")), TASK_DEFAULTS[FEATURES])
        config["modality_config"] = {key: dict(value) for key, value in modality_config.items()}
        config.setdefault("module_output_name", output_name)
        return config
    if not isinstance(config.get("modality_config"), dict):
        return config  # validated (and refused) by the module
    restored: dict[Any, Any] = {}
    for key, settings in config["modality_config"].items():
        parts = key.split("+") if isinstance(key, str) else []
        unknown = [part for part in parts if part not in MODALITY_NAMES] if parts else [key]
        if unknown:
            logger.warning(
                "Ignoring unknown modality key %r in modality_config (unknown parts %s); known modalities are %s.",
                key,
                unknown,
                sorted(MODALITY_NAMES),
            )
            continue
        restored[tuple(sorted(parts)) if len(parts) > 1 else key] = settings
    config["modality_config"] = restored
    return config


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


def init_kwargs_from_file(
    config: dict[str, Any],
    accepted: set[str],
    file: Path,
    trust_remote_code: bool,
    caller_kwargs: dict[str, dict[str, Any] | None],
) -> dict[str, Any]:
    """The Transformer's ``__init__`` keywords from a module config read from ``file``.

    The caller's Hugging Face kwargs win over the saved ones, ``trust_remote_code`` comes from the caller only,
    a saved ``model_max_length`` wins over ``max_seq_length``, and keys ``__init__`` does not take are dropped
    with a warning.
    """
    config = dict(config)
    for key in KWARGS_DICTS:
        config[key] = {
            **(config.get(key) or {}),
            "trust_remote_code": trust_remote_code,
            **(caller_kwargs.get(key) or {}),
        }
    if "model_max_length" in config["processor_kwargs"]:
        config.pop("max_seq_length", None)
    unknown = sorted(set(config) - accepted)
    if unknown:
        logger.warning("Ignoring unknown keys %s in %s", unknown, file)
    return {key: value for key, value in config.items() if key in accepted}


def merge_hf_kwargs(
    model_kwargs: dict[str, Any] | None,
    processor_kwargs: dict[str, Any] | None,
    config_kwargs: dict[str, Any] | None,
    legacy_kwargs: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The three Hugging Face kwargs dicts, with old constructor arguments folded in.

    ``model_args``, ``tokenizer_args``, ``config_args``, ``tokenizer_kwargs`` and ``cache_dir`` go through the same
    renames as config files.
    """
    cache_dir = legacy_kwargs.pop("cache_dir", None)
    renamed = rename_legacy_keys(legacy_kwargs)
    unknown = sorted(set(renamed) - set(KWARGS_DICTS))
    if unknown:
        raise TypeError(f"Transformer got unexpected keyword arguments {unknown}.")
    if legacy_kwargs:
        logger.warning("Transformer arguments %s are deprecated; use %s.", sorted(legacy_kwargs), sorted(renamed))
    merged = {
        "model_kwargs": {**(renamed.get("model_kwargs") or {}), **(model_kwargs or {})},
        "processor_kwargs": {**(renamed.get("processor_kwargs") or {}), **(processor_kwargs or {})},
        "config_kwargs": {**(renamed.get("config_kwargs") or {}), **(config_kwargs or {})},
    }
    if cache_dir is not None:
        for kwargs in merged.values():
            kwargs.setdefault("cache_dir", cache_dir)
    return merged["model_kwargs"], merged["processor_kwargs"], merged["config_kwargs"]


def for_task(file_config: dict[str, Any], init_defaults: dict[str, Any] | None) -> dict[str, Any]:
    """A saved config as the task asked for by ``init_defaults`` reads it.

    An embedding model's folder (task "feature-extraction", or none from before tasks existed) loaded for another
    task, e.g. as a cross-encoder on its backbone: its task and text entry give way to the task's own, as the
    reference builds a new Transformer for it. (See ``modules/transformer/module.py``'s ``Transformer.load``.)
    """
    task = (init_defaults or {}).get("transformer_task", FEATURES)
    if task == FEATURES or file_config.get("transformer_task", FEATURES) != FEATURES:
        return file_config
    replaced = ("transformer_task", "modality_config", "module_output_name")
    if (file_config.get("modality_config"), file_config.get("module_output_name")) in (
        TASK_DEFAULTS[FEATURES],
        (None, None),
    ):
        return {key: value for key, value in file_config.items() if key not in replaced}
    return file_config
