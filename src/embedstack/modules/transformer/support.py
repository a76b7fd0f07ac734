"""Helpers of the Transformer module: tokenizer loading, modality_config checks, text input checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from embedstack.errors import MissingExtraError, ModelFormatError, UnsupportedModalityError
from embedstack.modules.transformer.video import VIDEO_ENVIRONMENT


def split_modality(key: str) -> str | tuple[str, ...]:
    """``"image+text"`` -> ``("image", "text")`` (the inverse of ``embedstack.inputs.format_modality``)."""
    return tuple(sorted(key.split("+"))) if "+" in key else key


_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")


def load_processor(path: str, processor_kwargs: dict[str, Any]) -> Any:
    """The backbone's processor, or its tokenizer.

    For a local folder: AutoProcessor when it has a processor or feature-extractor config, else AutoTokenizer. For
    a Hub id (a user building a module from a backbone; transformers resolves it, as it does the config and the
    weights): AutoProcessor, which looks for those configs in the resolved repository and falls back to the
    tokenizer, as sentence-transformers does.
    """
    from transformers import AutoProcessor, AutoTokenizer

    local = Path(path).is_dir()
    multimodal = not local or any(Path(path, name).is_file() for name in _PROCESSOR_FILES)
    try:
        if multimodal:
            return AutoProcessor.from_pretrained(path, **processor_kwargs)
        return AutoTokenizer.from_pretrained(path, **processor_kwargs)
    except ImportError as exc:
        if "torchvision" in str(exc).lower():
            raise MissingExtraError(
                f"The processor in {path} includes a video processor (or a torchvision image processor), which "
                f"needs torchvision, and torchvision is not installed here. {VIDEO_ENVIRONMENT}"
            ) from None
        if "PIL" in str(exc) or "Pillow" in str(exc) or "vision" in str(exc).lower():
            raise MissingExtraError(
                f"The processor in {path} handles images and needs Pillow. Run: pip install 'embedstack[image]'"
            ) from None
        raise
    except (OSError, ValueError) as exc:
        raise ModelFormatError(
            f"The {'processor' if multimodal else 'tokenizer'} in {path} could not be loaded ({exc}). The folder "
            "needs tokenizer.json or the tokenizer's vocabulary files (and, for images or audio, the processor "
            "config); restore them from the original model."
        ) from None


def tokenizer_location(folder: Path, value: Any) -> str:
    """Where a ``tokenizer_name_or_path`` read from a model folder's config points.

    A folder inside the model, or a Hub id. Paths leaving the folder (absolute, ``..``, ``~``) are refused.
    """
    if not isinstance(value, str) or not value:
        raise ModelFormatError(f"{folder} sentence_bert_config.json key 'tokenizer_name_or_path' is {value!r}.")
    inside = (folder / value).resolve()
    if inside.is_dir() and folder.resolve() in (inside, *inside.parents):
        return str(inside)
    if value.startswith(("/", "~", ".", "\\")) or ".." in value.replace("\\", "/").split("/") or ":" in value:
        raise ModelFormatError(
            f"{folder} sentence_bert_config.json key 'tokenizer_name_or_path' is {value!r}, a path outside the model "
            "folder. It must be a folder inside the model or a Hub id; fix the file."
        )
    return value


def check_tokenizer_vocabulary(tokenizer: Any, config: Any, path: str) -> None:
    """Refuse a tokenizer built without its vocabulary, which would turn every word into [UNK].

    transformers makes a tokenizer of special tokens only when the vocabulary files are missing.
    """
    vocab_size = getattr(config, "vocab_size", None)
    if tokenizer is None or not isinstance(vocab_size, int) or vocab_size < 100:
        return
    if len(tokenizer) < 10:
        raise ModelFormatError(
            f"The tokenizer in {path} has {len(tokenizer)} tokens while the model has {vocab_size}: its vocabulary "
            "files (tokenizer.json, vocab.txt, ...) are missing. Restore them from the original model."
        )


# Backbones that number positions from padding_idx + 1, so the position table holds pad_token_id + 1 fewer tokens.
_POSITION_OFFSET_TYPES = frozenset(
    {"roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "ibert", "data2vec-text"}
)


def position_limit(config: Any) -> int | None:
    """How many tokens the backbone's position table takes, or None when its config does not say.

    ``max_position_embeddings``, less the offset of backbones that number positions from ``padding_idx + 1``
    (RoBERTa, XLM-R, MPNet, ...: 514 positions hold 512 tokens). ``config`` is a Hugging Face config or a dict.
    """
    read = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    positions = read("max_position_embeddings")
    if not isinstance(positions, int) or positions < 1:
        return None
    pad_token_id = read("pad_token_id")
    if read("model_type") in _POSITION_OFFSET_TYPES and isinstance(pad_token_id, int):
        positions -= pad_token_id + 1
    return positions


def prepare_tokenizer(
    tokenizer: Any, config: Any, *, max_seq_length: int | None, do_lower_case: bool, own_limit: int | None = None
) -> int:
    """Make ``tokenizer`` lowercase its inputs when asked; return the token limit it should truncate to.

    The limit is ``max_seq_length`` when given, else the tokenizer's own (``own_limit``, by default its
    ``model_max_length``) capped at what the backbone's position table takes. The Transformer module and the
    native and onnx backends all set their tokenizer up here, so they truncate and lowercase alike.
    """
    if do_lower_case:
        add_lowercase(tokenizer)
    if max_seq_length is not None:
        return int(max_seq_length)
    own = int(tokenizer.model_max_length if own_limit is None else own_limit)
    positions = position_limit(config)
    return own if positions is None else min(own, positions)


def add_lowercase(tokenizer: Any) -> None:
    """Make ``tokenizer`` lowercase its inputs (a no-op when its normalizer already does).

    ``tokenizer`` is a Hugging Face tokenizer (fast or slow) or a ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer
    from tokenizers.normalizers import Lowercase, Sequence

    backend = tokenizer if isinstance(tokenizer, Tokenizer) else getattr(tokenizer, "backend_tokenizer", None)
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


def validate_modality_config(config: Any, model: Any = None) -> dict[Any, dict[str, Any]]:
    """Check ``modality_config``: each entry names a method of ``model`` and where its output is."""
    if not isinstance(config, dict) or not config:
        raise ModelFormatError(
            f"modality_config must be a non-empty object such as {{'text': {{'method': 'forward', "
            f"'method_output_name': 'last_hidden_state'}}}}, got {config!r}. Fix it in sentence_bert_config.json."
        )
    result = {}
    for key, settings in config.items():
        problem = _modality_settings_problem(settings, model)
        if problem:
            raise ModelFormatError(
                f"modality_config entry {key!r} {problem} (got {settings!r}). Each entry needs 'method' (a method "
                "of the backbone, e.g. 'forward') and 'method_output_name' (e.g. 'last_hidden_state', a list of "
                "keys, or null for a method returning a tensor). Fix it in sentence_bert_config.json."
            )
        result[split_modality(key) if isinstance(key, str) else tuple(sorted(key))] = settings
    return result


def _modality_settings_problem(settings: Any, model: Any) -> str | None:
    if not isinstance(settings, dict) or "method" not in settings or "method_output_name" not in settings:
        return "must be an object with 'method' and 'method_output_name'"
    method, output = settings["method"], settings["method_output_name"]
    if not isinstance(method, str) or not method.isidentifier() or method.startswith("_"):
        return "has a 'method' that is not a public method name"
    if model is not None and not callable(getattr(model, method, None)):
        return f"names method {method!r}, which the backbone ({type(model).__name__}) does not have"
    parts = [output] if isinstance(output, (str, int)) else output
    if output is not None and (
        not isinstance(parts, list) or not parts or not all(isinstance(p, (str, int)) for p in parts)
    ):
        return "has a 'method_output_name' that is not a key, a non-empty list of keys, or null"
    return None


def split_text_inputs(inputs: list[Any], modalities: list) -> tuple[list[str], list[str] | None]:
    """Texts and, for a batch of pairs, their second texts.

    Raises:
        UnsupportedModalityError: An input is not text.
        ValueError: The batch mixes single texts and pairs.

    """
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


def read_method_output(output: Any, path: list[str | int], module_output_name: str, where: str) -> Any:
    """The tensor at ``path`` in a backbone method's output, checked to have the shape ``module_output_name`` needs.

    An image backbone's 4-D ``(batch, channels, height, width)`` map becomes ``(batch, height * width, channels)``
    token embeddings. ``where`` starts the error message.
    """
    value = output
    try:
        for part in path:
            value = value[part] if not isinstance(part, str) or not hasattr(value, part) else getattr(value, part)
    except (KeyError, IndexError, TypeError):
        value = None
    if isinstance(value, torch.Tensor) and value.ndim == 4 and module_output_name == "token_embeddings":
        value = value.flatten(2).transpose(1, 2)  # (batch, channels, h, w) -> (batch, h*w, channels)
    expected_ndim = {"token_embeddings": 3, "sentence_embedding": 2}.get(module_output_name)
    if not isinstance(value, torch.Tensor) or value.ndim != (expected_ndim or value.ndim):
        raise ModelFormatError(
            f"{where}, which gives {_describe(value)}, not a {expected_ndim or 'any'}-D tensor of "
            f"{module_output_name}. Fix method_output_name in sentence_bert_config.json."
        )
    return value


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.ndim}-D tensor"
    return "nothing" if value is None else f"a {type(value).__name__}"


def drop_preprocess_flags(features: dict[str, Any]) -> None:
    """Remove what ``preprocess`` reports to the caller (``truncated``: inputs cut short) and no model takes."""
    features.pop("truncated", None)
