"""Helpers of the Transformer module: tokenizer loading, modality_config checks, text input checks."""

from __future__ import annotations

from typing import Any

from embedstack.errors import ModelFormatError, UnsupportedModalityError


def join_modality(modality: str | tuple[str, ...]) -> str:
    """``("image", "text")`` -> ``"image+text"``, the form written to ``sentence_bert_config.json``."""
    return modality if isinstance(modality, str) else "+".join(modality)


def split_modality(key: str) -> str | tuple[str, ...]:
    """``"image+text"`` -> ``("image", "text")``."""
    return tuple(sorted(key.split("+"))) if "+" in key else key


def load_processor(path: str, processor_kwargs: dict[str, Any]):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, **processor_kwargs)
    except (OSError, ValueError) as exc:
        raise ModelFormatError(
            f"The tokenizer in {path} could not be loaded ({exc}). The folder needs tokenizer.json or the "
            "tokenizer's vocabulary files; restore them from the original model."
        ) from None


def add_lowercase(tokenizer) -> None:
    from tokenizers.normalizers import Lowercase, Sequence

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        tokenizer.do_lower_case = True
        return
    normalizer = backend.normalizer
    if normalizer is not None and "Lowercase" in repr(normalizer):
        return
    parts = [Lowercase()]
    if normalizer is not None:
        parts.append(normalizer)
    backend.normalizer = Sequence(parts)


def validate_modality_config(config: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    result = {}
    for key, settings in config.items():
        if not isinstance(settings, dict) or "method" not in settings or "method_output_name" not in settings:
            raise ModelFormatError(
                f"modality_config entry {key!r} must be an object with 'method' and 'method_output_name', got "
                f"{settings!r}. Fix it in sentence_bert_config.json."
            )
        result[split_modality(key) if isinstance(key, str) else tuple(sorted(key))] = settings
    return result


def split_text_inputs(inputs: list[Any], modalities: list) -> tuple[list[str], list[str] | None]:
    texts: list[str] = []
    pairs: list[str] = []
    for index, item in enumerate(inputs):
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(part, str) for part in item):
            texts.append(item[0])
            pairs.append(item[1])
        else:
            raise UnsupportedModalityError(
                f"Input {index} is a {type(item).__name__}, not text. This model accepts {modalities}; pass "
                "strings (or pairs of strings)."
            )
    if pairs and len(pairs) != len(texts):
        raise ValueError("A batch must be all single texts or all text pairs, not a mix of both.")
    return texts, (pairs or None)
