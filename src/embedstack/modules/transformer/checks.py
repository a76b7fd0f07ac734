"""What the Transformer module checks on construction and per call, and what it warns about.

Each check raises (or logs) where sentence-transformers 6.2 does. Where the reference's message has a phrase its
users and tests match on ("Unsupported backend", "Could not determine embedding dimension", "Modality 'image' is
not supported", ...), ours starts with that phrase and then says why it matters and how to fix it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from packaging.version import Version

from embedstack.errors import ModelFormatError, UnsupportedModalityError
from embedstack.inputs import Modality, format_modality, infer_modality
from embedstack.modules.transformer.config import TASK_AUTO_CLASSES

logger = logging.getLogger(__name__)

PROCESSING_KWARGS_KEYS = ("common", "text", "audio", "image", "video", "chat_template")
# Config attributes that hold a backbone's width, in the reference's order (a list gives its last stage's width).
_WIDTH_KEYS = ("hidden_size", "neck_hidden_sizes", "hidden_sizes", "embed_dims", "hidden_dim")
# Attention settings a config may ask for, and the first transformers release that honours each (older ones
# ignore it silently and run the backbone's default, often causal, attention).
_ATTENTION_FLAGS = (("use_bidirectional_attention", True, "4.56.2"), ("is_causal", False, "5.2.0"))


def check_task_and_backend(transformer_task: str, backend: str) -> None:
    """Refuse a task embedstack does not load and a backend other than "torch" for the module itself."""
    if transformer_task not in TASK_AUTO_CLASSES:
        raise ValueError(
            f"Unsupported transformer_task {transformer_task!r}: embedstack loads {sorted(TASK_AUTO_CLASSES)} "
            "backbones ('feature-extraction' for embedding models, 'sequence-classification' for cross-encoders)."
        )
    if backend != "torch":
        raise ValueError(
            f"Unsupported backend {backend!r} for the Transformer module itself, which runs 'torch'. Load a folder "
            f"with Transformer.load(path, backend={backend!r}) (or SentenceTransformer(path, backend=...)) for "
            "other backends."
        )


def check_custom_modality_config(modality_config: Any, module_output_name: str | None) -> None:
    """A caller's ``modality_config`` must come with the name of the feature the module writes."""
    if modality_config is not None and module_output_name is None:
        raise ValueError(
            "A custom modality_config requires also providing module_output_name: the name of the feature the "
            "module writes, which decides what the next module reads. Pass module_output_name='token_embeddings' "
            "(token vectors, for a Pooling module) or 'sentence_embedding' (one vector per input, e.g. from a "
            "get_text_features method)."
        )


def warn_unknown_processing_sections(sections: Iterable[str], *, per_call: bool) -> None:
    """Warn about ``processing_kwargs`` sections that no processor call reads (they are ignored)."""
    for section in sorted(set(sections) - set(PROCESSING_KWARGS_KEYS)):
        logger.warning(
            "Unknown keys in %s`processing_kwargs`: %r. Ignoring processing_kwargs section %r: it is none of %s. "
            "Did you mean to nest it under 'common' or a modality key ('text', 'audio', 'image', 'video')?",
            "per-call " if per_call else "",
            section,
            section,
            list(PROCESSING_KWARGS_KEYS),
        )


def warn_unpad_inputs(unpad_inputs: bool | None) -> None:
    """``unpad_inputs=True`` asks for something this module never does: say so, and that padding stays small."""
    if unpad_inputs is True:
        logger.warning(
            "unpad_inputs=True was set, but the prerequisites for skipping padding are not met: embedstack never "
            "concatenates inputs without padding (that needs flash attention's variable-length kernels). Falling "
            "back to padded inputs; the engine batches inputs of similar token counts, so little padding is run. "
            "Leave unpad_inputs unset to silence this."
        )


def warn_tokenizer_name_or_path() -> None:
    """``tokenizer_name_or_path`` still works, as in the reference, which deprecates it."""
    logger.warning(
        "The `tokenizer_name_or_path` argument is deprecated: a model folder holds its own tokenizer or processor. "
        "Save the tokenizer into the model folder and load both from the same path."
    )


def warn_unsupported_attention(config: Any, transformers_version: str) -> None:
    """Warn when the config (or a sub-config) asks for attention the installed transformers ignores."""
    configs = [config, *(getattr(config, name, None) for name in getattr(config, "sub_configs", None) or {})]
    for flag, value, minimum in _ATTENTION_FLAGS:
        if Version(transformers_version) < Version(minimum) and any(getattr(c, flag, None) is value for c in configs):
            logger.warning(
                "The model config specifies `%s=%s`, but the installed transformers (%s) ignores it and runs the "
                "model's default attention (often causal), which likely degrades its embeddings. Upgrade with: pip "
                'install -U "transformers>=%s"',
                flag,
                value,
                transformers_version,
                minimum,
            )


def backbone_method(model: Any, name: str, modality: Modality) -> Any:
    """The backbone method ``modality_config[modality]`` names; ValueError when the backbone has none."""
    method = getattr(model, name, None)
    if not callable(method):
        raise ValueError(
            f"Model does not have the requested {name!r} method: modality_config[{format_modality(modality)!r}] "
            f"names it, but the backbone is a {type(model).__name__}. Set 'method' to one of its methods "
            "(e.g. 'forward')."
        )
    return method


def embedding_dimension(config: Any, module_output_name: str) -> int:
    """The width of what the module writes, read from the backbone's config as the reference reads it.

    A timm backbone's ``num_features``; a projected ``sentence_embedding``'s ``projection_dim``; else the first
    width key (:data:`_WIDTH_KEYS`) of the config, then of its ``text_config``, then of its other sub-configs.
    """
    if type(config).__name__ == "TimmWrapperConfig":
        return int(config.num_features)
    sub_names = [name for name in getattr(config, "sub_configs", None) or {} if name != "text_config"]
    candidates = [config, getattr(config, "text_config", None), *(getattr(config, n, None) for n in sub_names)]
    keys = ("projection_dim", *_WIDTH_KEYS) if module_output_name == "sentence_embedding" else _WIDTH_KEYS
    for candidate in candidates:
        for key in keys if candidate is not None else ():
            value = getattr(candidate, key, None)
            if isinstance(value, (list, tuple)):
                value = value[-1] if value else None
            if value is not None:
                return int(value)
    raise ModelFormatError(
        f"Could not determine embedding dimension from model config. Config type: {type(config).__name__}, which "
        f"has none of {list(_WIDTH_KEYS)} (nor has its text or other sub-configs). The next module needs this "
        "width: give it yourself, e.g. Pooling(<width>), or set hidden_size in the backbone's config.json."
    )


def unsupported_modality_error(
    inputs: list[Any], modality: Modality, supported: list[Modality]
) -> UnsupportedModalityError:
    """The error for a batch of ``modality`` that the module cannot take, naming what is wrong with it.

    A mixed batch parses as "message"; its inputs are looked at one by one to tell chat inputs, kinds the module
    does not take, and kinds it takes only one at a time apart.
    """
    taken = ", ".join(format_modality(m) for m in supported)
    source = "this Transformer module"
    if modality == "message":
        try:
            kinds = {infer_modality(item, supported) for item in inputs}
        except ValueError:
            kinds = set()
        if "message" in kinds:
            mixed = ", which this batch mixes with other modalities" if len(kinds) > 1 else ""
            return UnsupportedModalityError(
                f"This Transformer module does not support chat-style 'message' inputs (dicts or lists of dicts "
                f"with 'role' and 'content'){mixed}: its backbone has no chat template. Supported modalities: "
                f"{taken}. Pass the message texts themselves."
            )
        if kinds:
            present = ", ".join(sorted(format_modality(kind) for kind in kinds))
            parts = {part for kind in kinds for part in (kind if isinstance(kind, tuple) else (kind,))}
            missing = sorted(part for part in parts if part not in supported)
            if missing:
                return UnsupportedModalityError(
                    f"This batch mixes multiple modalities ({present}), but {source} does not support "
                    f"{', '.join(missing)}. Supported modalities: {taken}. Leave those inputs out of this batch."
                )
            return UnsupportedModalityError(
                f"This batch mixes multiple modalities ({present}), which {source} cannot encode in a single "
                "batch. Encode each modality separately (one call per modality)."
            )
    if isinstance(modality, tuple) and all(part in supported for part in modality):
        return UnsupportedModalityError(
            f"This Transformer module supports {' and '.join(modality)} individually, but cannot combine them in a "
            "single input. Encode each modality separately (one call per modality)."
        )
    return UnsupportedModalityError(
        f"Modality {format_modality(modality)!r} is not supported by {source}. Supported modalities: {taken}. Pass "
        "inputs of those kinds, or use a backbone whose processor takes this modality."
    )
