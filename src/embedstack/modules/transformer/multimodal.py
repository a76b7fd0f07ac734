"""What a Hugging Face backbone can take, and turning non-text inputs into its processor's features.

Used by the Transformer module for images, audio, video, ``{"text": ..., "image": ...}`` dicts and chat messages
(plain text keeps its fast path in text.py; parsing.py groups a batch by modality, video.py handles videos).
The rules follow sentence-transformers 6.2, so that both libraries infer the same ``modality_config`` and build
the same features:

- modalities come from the processor's parts (tokenizer -> text, image_processor -> image, feature_extractor ->
  audio, video_processor -> video), plus "message" when it has a chat template;
- a backbone whose ``forward`` returns ``last_hidden_state`` serves every modality through ``forward``; otherwise
  (CLIP-style dual encoders) each modality uses ``get_<modality>_features`` and the module outputs
  ``sentence_embedding``;
- a model with a chat template turns every input into a conversation (its message "format" is "structured"
  when the template indexes typed content parts, else "flat"), and a prompt becomes a system message.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from typing import Any, get_args, get_type_hints

from embedstack.errors import MissingExtraError, UnsupportedModalityError
from embedstack.inputs import Modality
from embedstack.modules.transformer.chat_suffix import restore_suffix, truncation_limit
from embedstack.modules.transformer.checks import unsupported_modality_error
from embedstack.modules.transformer.parsing import MessageFormat, batch_to_messages, parse_inputs, with_system_prompt
from embedstack.modules.transformer.video import check_video_support

logger = logging.getLogger(__name__)

PROCESSOR_ARGUMENTS = {"text": "text", "image": "images", "audio": "audio", "video": "videos"}
_PROCESSOR_PARTS = {
    "tokenizer": "text",
    "image_processor": "image",
    "feature_extractor": "audio",
    "video_processor": "video",
}
_FLAT_MODEL_TYPES = {"apertus", "deepseek_v3", "gpt_oss", "seed_oss"}
_STRUCTURED_MARKS = ("content[0]", ".type", "'type'", '"type"', "item.type", "message.content[")


# ----- what the backbone takes ----------------------------------------------------------------------------
def processor_modalities(processor: Any) -> list[str]:
    """The modalities a processor (or a bare tokenizer / feature extractor / image processor) handles."""
    from transformers import FeatureExtractionMixin, ImageProcessingMixin, PreTrainedTokenizerBase, ProcessorMixin

    if isinstance(processor, ProcessorMixin):
        # Older transformers releases list the parts in a class attribute instead of get_attributes().
        parts = processor.get_attributes() if hasattr(processor, "get_attributes") else processor.attributes  # type: ignore[attr-defined]
        return [modality for part, modality in _PROCESSOR_PARTS.items() if part in parts]
    video_processor: type | tuple[()]
    try:
        from transformers import BaseVideoProcessor

        video_processor = BaseVideoProcessor
    except ImportError:  # pragma: no cover - older transformers
        video_processor = ()
    kinds: tuple[tuple[str, type | tuple[()]], ...] = (
        ("text", PreTrainedTokenizerBase),
        ("audio", FeatureExtractionMixin),
        ("video", video_processor),
        ("image", ImageProcessingMixin),
    )
    for modality, kind in kinds:
        if kind and isinstance(processor, kind):
            return [modality]
    logger.warning(
        "Could not determine modalities from processor of type %s: it is no tokenizer, feature extractor, image "
        "or video processor, nor a processor made of them. Pass modality_config (and module_output_name).",
        type(processor).__name__,
    )
    return []


def output_fields(method: Any) -> list[str] | None:
    """The field names of the ``ModelOutput`` a backbone method is annotated to return, or None."""
    from transformers.utils import ModelOutput

    def find(annotation: Any) -> type | None:
        if isinstance(annotation, type) and issubclass(annotation, ModelOutput):
            return annotation
        return next((found for sub in get_args(annotation) if (found := find(sub)) is not None), None)

    try:
        output_class = find(get_type_hints(method).get("return"))
    except Exception:  # annotations that do not resolve
        return None
    return [field.name for field in dataclasses.fields(output_class)] if output_class else None


def message_format(processor: Any, model_type: str) -> MessageFormat:
    """How the chat template wants message content: typed parts ("structured") or the value itself ("flat")."""
    if model_type in _FLAT_MODEL_TYPES:
        return "flat"
    template = getattr(processor, "chat_template", None)
    if not isinstance(template, str) or not template:
        return "structured"
    return "structured" if any(mark in template for mark in _STRUCTURED_MARKS) else "flat"


def infer_modality_config(model: Any, processor: Any) -> tuple[dict[Modality, dict[str, Any]], str]:
    """``(modality_config, module_output_name)`` for a feature-extraction backbone and its processor."""
    modalities: list[str] = processor_modalities(processor) or ["text"]
    chat = getattr(processor, "chat_template", None) is not None
    fields = output_fields(model.forward)
    if fields is None or "last_hidden_state" in fields:
        config: dict[Modality, dict[str, Any]] = {
            modality: {"method": "forward", "method_output_name": "last_hidden_state"} for modality in modalities
        }
        if chat:
            model_type = getattr(model.config, "model_type", "")
            config["message"] = {
                "method": "forward",
                "method_output_name": "last_hidden_state",
                "format": message_format(processor, model_type),
            }
        return config, "token_embeddings"
    config = {}
    for modality in modalities:
        method = getattr(model, f"get_{modality}_features", None)
        if method is not None:
            pooled = "pooler_output" in (output_fields(method) or [])
            config[modality] = {
                "method": f"get_{modality}_features",
                "method_output_name": "pooler_output" if pooled else None,
            }
    return config, "sentence_embedding"


# ----- calling the processor ------------------------------------------------------------------------------
def call_processor(
    processor: Any,
    modality: Modality,
    values: dict[str, list],
    modality_kwargs: dict[str, dict[str, Any]],
    common_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Run ``processor`` on one batch of one (possibly compound) modality."""
    from transformers import ProcessorMixin

    _check_image_support(values)
    arguments = {PROCESSOR_ARGUMENTS.get(key, key): value for key, value in values.items()}
    if isinstance(processor, ProcessorMixin):
        return processor(
            **arguments,
            text_kwargs=modality_kwargs["text"],
            images_kwargs=modality_kwargs["image"],
            audio_kwargs=modality_kwargs["audio"],
            videos_kwargs=modality_kwargs["video"],
            common_kwargs=common_kwargs,
        )
    if not isinstance(modality, str) or modality not in values:
        raise UnsupportedModalityError(f"The backbone's {type(processor).__name__} takes one modality, not {modality}.")
    return processor(values[modality], **modality_kwargs[modality], **common_kwargs)


def apply_chat_template(
    processor: Any,
    conversations: list[list[dict]],
    modality_kwargs: dict[str, dict[str, Any]],
    common_kwargs: dict[str, Any],
    chat_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Render and tokenize conversations with the chat template (a processor's, or a bare tokenizer's)."""
    from transformers import ProcessorMixin

    if any(_has_video(conversation) for conversation in conversations):
        check_video_support()
    if isinstance(processor, ProcessorMixin):
        # As sentence-transformers: load_audio_from_video is an apply_chat_template argument, off by default.
        video_kwargs = dict(modality_kwargs["video"])
        chat_kwargs = {"load_audio_from_video": video_kwargs.pop("load_audio_from_video", False), **chat_kwargs}
        # transformers annotates this "-> str", but with tokenize=True and return_dict=True it returns a BatchFeature.
        return processor.apply_chat_template(  # type: ignore[return-value]
            conversations,
            tokenize=True,
            return_dict=True,
            return_tensors=common_kwargs.get("return_tensors"),
            processor_kwargs={
                "text_kwargs": modality_kwargs["text"],
                "images_kwargs": modality_kwargs["image"],
                "audio_kwargs": modality_kwargs["audio"],
                "videos_kwargs": video_kwargs,
                "common_kwargs": common_kwargs,
            },
            **chat_kwargs,
        )
    top = ("padding", "truncation", "max_length", "return_tensors")
    text_kwargs = dict(modality_kwargs["text"])
    common = dict(common_kwargs)
    top_level = {key: common.pop(key) for key in top if key in common}
    top_level |= {key: text_kwargs.pop(key) for key in top if key in text_kwargs}
    return processor.apply_chat_template(
        conversations,
        tokenize=True,
        return_dict=True,
        tokenizer_kwargs=text_kwargs,
        common_kwargs=common,
        **top_level,
        **chat_kwargs,
    )


def _check_image_support(values: dict[str, list]) -> None:
    if ("image" in values or "video" in values) and importlib.util.find_spec("PIL") is None:
        raise MissingExtraError("Image and video inputs need Pillow. Run: pip install 'embedstack[image]'")
    if "video" in values:
        check_video_support()


def _has_video(conversation: list[dict]) -> bool:
    """Whether a conversation holds a ``{"type": "video", ...}`` content part."""
    return any(
        isinstance(part, dict) and part.get("type") == "video"
        for message in conversation
        if isinstance(message.get("content"), list)
        for part in message["content"]
    )


# ----- the Transformer's general preprocessing path -------------------------------------------------------
def is_text_batch(inputs: list[Any]) -> bool:
    """Texts or text pairs only: the tokenizer's fast path."""
    return all(
        isinstance(item, str)
        or (isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(part, str) for part in item))
        for item in inputs
    )


def preprocess_multimodal(
    module: Any,
    inputs: list[Any],
    prompt: str | None,
    processing_kwargs: dict[str, dict],
    text_kwargs: dict,
    *,
    modality: Modality | None = None,
) -> dict[str, Any]:
    """Features for a batch that is not plain text (or for any batch of a chat model).

    Built as sentence-transformers 6.2 builds them. ``text_kwargs`` are the tokenizer settings (padding,
    truncation, max_length, ...); ``modality``, when given, is the batch's already decided modality.
    """
    supported = list(module.modality_config)
    style = module.modality_config.get("message", {}).get("format", "structured")
    modality, values, extra = parse_inputs(inputs, supported, style, batch_modality=modality)
    common = {"return_tensors": text_kwargs.get("return_tensors", "pt"), **processing_kwargs.get("common", {})}
    text = {key: value for key, value in text_kwargs.items() if key not in common and key != "return_tensors"}
    modality_kwargs = _modality_kwargs(module, text, processing_kwargs, extra)
    if "message" in supported and modality != "message":
        if any(isinstance(value, (tuple, list)) for value in values.get("text", [])):
            raise UnsupportedModalityError("Text pairs cannot be encoded by a chat-template model; pass single texts.")
        values, modality = {"message": batch_to_messages(modality, values, style)}, "message"
    elif modality not in supported:
        raise unsupported_modality_error(inputs, modality, supported)
    if prompt:
        _add_prompt(values, modality, prompt, style)
    if modality == "message":
        features = _chat_features(module, values["message"], modality_kwargs, common, processing_kwargs)
    else:
        features = call_processor(module.processor, modality, values, modality_kwargs, common)
    features = dict(features)
    features["modality"] = modality
    return features


def _modality_kwargs(
    module: Any, text: dict[str, Any], processing_kwargs: dict[str, dict], extra: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The processor settings of each modality: ``text`` for the tokenizer, then the module's and the batch's."""
    modality_kwargs: dict[str, dict[str, Any]] = {
        "text": text,
        "audio": {"padding": "max_length" if module.config.model_type == "whisper" else True},
        "image": {},
        "video": {},
    }
    for section in ("audio", "image", "video"):
        modality_kwargs[section].update(processing_kwargs.get(section, {}))
    for section, kwargs in extra.items():
        modality_kwargs[section].update(kwargs)
    return modality_kwargs


def _add_prompt(values: dict[str, list], modality: Modality, prompt: str, style: MessageFormat) -> None:
    """Put ``prompt`` in front of each text, or before each conversation as a system message (in place)."""
    if modality == "message":
        values["message"] = with_system_prompt(values["message"], prompt, style)
    elif modality == "text":
        values["text"] = [
            prompt + value if isinstance(value, str) else [prompt + value[0], *value[1:]] for value in values["text"]
        ]


def _chat_features(
    module: Any,
    conversations: list[list[dict]],
    modality_kwargs: dict[str, dict[str, Any]],
    common: dict[str, Any],
    processing_kwargs: dict[str, dict],
) -> dict[str, Any]:
    """Conversations through the chat template; rows cut by truncation get the template's closing tokens back."""
    chat_kwargs = dict(processing_kwargs.get("chat_template", {}))
    restore = chat_kwargs.pop("restore_suffix", True)
    features = apply_chat_template(module.processor, conversations, modality_kwargs, common, chat_kwargs)
    limit = truncation_limit(modality_kwargs, common, chat_kwargs, module.max_seq_length) if restore else None
    if limit is not None:
        top = {"padding", "truncation", "max_length", "return_tensors"}
        plain = {
            "text": {k: v for k, v in modality_kwargs["text"].items() if k not in top}
            | {"padding": False, "truncation": False},
            "audio": {},
            "image": {},
            "video": {},
        }
        bare_common = {k: v for k, v in common.items() if k not in top}
        bare_chat = {k: v for k, v in chat_kwargs.items() if k not in top}

        def render(conversation: list[dict]) -> list[int]:
            ids = apply_chat_template(module.processor, [conversation], plain, bare_common, bare_chat)["input_ids"]
            ids = ids.tolist() if hasattr(ids, "tolist") else ids
            return ids[0] if ids and isinstance(ids[0], list) else ids

        restore_suffix(features, conversations, limit, render, module._suffix_cache)
    return features
