"""Legacy spellings of the sentence-transformers format, declared as data.

Read everywhere; written only when a legacy layout (for sentence-transformers < 5) is asked for.
"""

from __future__ import annotations

from typing import Any

ST = "sentence_transformers"

# Type strings sentence-transformers 6.2 writes for each built-in, by our class name.
CURRENT_TYPE_NAMES: dict[str, str] = {
    "Transformer": f"{ST}.base.modules.transformer.Transformer",
    "Dense": f"{ST}.base.modules.dense.Dense",
    "Normalize": f"{ST}.base.modules.normalize.Normalize",
    "Router": f"{ST}.base.modules.router.Router",
    "Pooling": f"{ST}.sentence_transformer.modules.pooling.Pooling",
    "StaticEmbedding": f"{ST}.sentence_transformer.modules.static_embedding.StaticEmbedding",
    "BoW": f"{ST}.sentence_transformer.modules.bow.BoW",
    "CNN": f"{ST}.sentence_transformer.modules.cnn.CNN",
    "LSTM": f"{ST}.sentence_transformer.modules.lstm.LSTM",
    "LayerNorm": f"{ST}.sentence_transformer.modules.layer_norm.LayerNorm",
    "Dropout": f"{ST}.sentence_transformer.modules.dropout.Dropout",
    "WordEmbeddings": f"{ST}.sentence_transformer.modules.word_embeddings.WordEmbeddings",
    "WordWeights": f"{ST}.sentence_transformer.modules.word_weights.WordWeights",
    "WeightedLayerPooling": f"{ST}.sentence_transformer.modules.weighted_layer_pooling.WeightedLayerPooling",
    "CLIPModel": f"{ST}.sentence_transformer.modules.clip_model.CLIPModel",
}

# Other spellings found in folders written since sentence-transformers 2.0, by our class name.
_EXTRA_TYPE_NAMES: dict[str, tuple[str, ...]] = {
    "Normalize": (f"{ST}.sentence_transformer.modules.normalize.Normalize",),  # a 5.x path
    "Router": (f"{ST}.models.Asym", f"{ST}.models.Asym.Asym"),
}


def _type_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for name, current in CURRENT_TYPE_NAMES.items():
        aliases[current] = name
        aliases[f"{ST}.models.{name}"] = name
        aliases[f"{ST}.models.{name}.{name}"] = name
        aliases[f"{ST}.sentence_transformer.modules.{name}"] = name  # the package re-export
    for name, spellings in _EXTRA_TYPE_NAMES.items():
        for spelling in spellings:
            aliases[spelling] = name
    return aliases


# Every known type string -> our class name.
TYPE_ALIASES: dict[str, str] = _type_aliases()

# The module config file names the Transformer module has had, in the order they are tried.
LEGACY_TRANSFORMER_CONFIG_FILES: tuple[str, ...] = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)

# Old Transformer config keys -> current ones.
TRANSFORMER_KEY_RENAMES: dict[str, str] = {
    "model_args": "model_kwargs",
    "tokenizer_args": "processor_kwargs",
    "tokenizer_kwargs": "processor_kwargs",
    "config_args": "config_kwargs",
}

_KWARGS_DICTS = ("model_kwargs", "processor_kwargs", "config_kwargs")


# Keys a model folder's files may not set in the Hugging Face kwargs: they would enable code, or make loading
# read or write outside the folder. The caller can still pass them.
FORBIDDEN_FILE_KWARGS = frozenset({"trust_remote_code", "cache_dir", "offload_folder", "token", "use_auth_token"})


def normalize_transformer_config(config: dict[str, Any]) -> dict[str, Any]:
    """Rename legacy Transformer keys and strip ``FORBIDDEN_FILE_KWARGS`` (a file may never enable code)."""
    config = dict(config)
    for old, new in TRANSFORMER_KEY_RENAMES.items():
        if old in config:
            value = config.pop(old)
            config[new] = {**(value or {}), **config.get(new, {})}
    for key in _KWARGS_DICTS:
        if key in config:
            config[key] = {k: v for k, v in (config[key] or {}).items() if k not in FORBIDDEN_FILE_KWARGS}
    return config


def legacy_module_config(class_name: str, config: dict[str, Any], module: Any) -> tuple[str, dict[str, Any]] | None:
    """The (file name, contents) a built-in wrote before sentence-transformers 5, or None to keep the current."""
    if class_name == "Transformer":
        return "sentence_bert_config.json", {
            "max_seq_length": module.max_seq_length,
            "do_lower_case": bool(getattr(module, "do_lower_case", False)),
        }
    if class_name == "Pooling":
        from embedstack.modules.pooling import LEGACY_POOLING_FLAGS

        modes = module.modes
        legacy = {"word_embedding_dimension": config["embedding_dimension"]}
        legacy.update({flag: mode in modes for flag, mode in LEGACY_POOLING_FLAGS.items()})
        legacy["include_prompt"] = config["include_prompt"]
        return "config.json", legacy
    if class_name == "Dense":
        keys = ("in_features", "out_features", "bias", "activation_function")
        return "config.json", {key: config[key] for key in keys}
    if class_name == "Normalize":
        return None, {}
    return None


def legacy_type_name(class_name: str) -> str | None:
    """``sentence_transformers.models.X`` for built-ins that existed before sentence-transformers 5."""
    return f"{ST}.models.{class_name}" if class_name in CURRENT_TYPE_NAMES else None
