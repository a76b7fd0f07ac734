"""What kind of input each item is: text, image, audio, video, a chat conversation, or several at once.

The rules follow sentence-transformers 6.2, so routes and modality checks agree between the two libraries:
a string is text (or an image / audio / video URL or existing file path, when the model takes that modality),
a ``{"text": ..., "image": ...}`` dict is the sorted tuple of its keys (one key collapses to that modality),
a list of ``{"role", "content"}`` dicts is a "message", and arrays are audio (1-2D), image (3D) or video (4-5D).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from embedstack.errors import UnsupportedModalityError

Modality = str | tuple[str, ...]
MODALITY_KEYS = frozenset({"text", "image", "audio", "video"})
_MEDIA_EXTENSIONS = {
    "image": (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".webp"),
    "video": (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv"),
    "audio": (".mp3", ".wav", ".ogg", ".flac", ".aac"),
}
YOUTUBE_HOSTS = ("www.youtube.com", "youtube.com", "youtu.be", "m.youtube.com")  # a URL on these is a video


def format_modality(modality: Modality) -> str:
    """``("image", "text")`` -> ``"image+text"``: how messages and ``sentence_bert_config.json`` write it."""
    return "+".join(modality) if isinstance(modality, tuple) else modality


def is_message(value: Any) -> bool:
    """One chat message: a dict with "role" and "content"."""
    return isinstance(value, dict) and "role" in value and "content" in value


def _looks_like_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and " " not in text


def media_kind_of_string(text: str) -> str | None:
    """The media kind ("image", "video" or "audio") of a URL, data URI or existing file path; else None."""
    if text.startswith("data:image/"):
        return "image"
    if _looks_like_url(text):
        try:
            parsed = urlparse(text)
        except ValueError:
            return None
        path = parsed.path.lower()
        for kind, extensions in _MEDIA_EXTENSIONS.items():
            if path.endswith(extensions):
                return kind
        return "video" if parsed.netloc in YOUTUBE_HOSTS else None
    lowered = text.lower()
    for kind, extensions in _MEDIA_EXTENSIONS.items():
        if lowered.endswith(extensions) and os.path.isfile(text):
            return kind
    return None


def infer_modality(item: Any, supported: Sequence[Modality] | None = None) -> Modality:
    """The modality of one input.

    Raises:
        UnsupportedModalityError: the item is of no known kind (the message names its type).
    """
    if isinstance(item, str):
        media = supported is None or any(m in supported for m in _MEDIA_EXTENSIONS)
        kind = media_kind_of_string(item) if media else None
        return kind if kind is not None and (supported is None or kind in supported) else "text"
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(part, str) for part in item):
        return "text"  # a text pair
    if is_message(item) or (isinstance(item, list) and item and is_message(item[0])):
        return "message"
    if isinstance(item, dict):
        return _dict_modality(item)
    if isinstance(item, (tuple, list)):
        raise UnsupportedModalityError(
            f"An input is a {type(item).__name__} of {len(item)} items, which is not text: a text pair has exactly two "
            "strings, and a conversation is a list of {'role': ..., 'content': ...} messages."
        )
    kind = _object_modality(item)
    if kind is None:
        raise UnsupportedModalityError(
            f"Cannot tell what kind of input a {type(item).__name__} is. Pass text (str), a text pair, an image "
            "(PIL image, path or URL), an audio or video array, a {'text': ..., 'image': ...} dict, or a list of "
            "chat messages."
        )
    return kind


def _dict_modality(item: dict) -> Modality:
    if "array" in item:
        if "sampling_rate" in item:
            return "audio"
        if "video_metadata" in item:
            return "video"
        raise UnsupportedModalityError(
            f"An input dict with 'array' needs 'sampling_rate' (audio) or 'video_metadata' (video); keys: "
            f"{sorted(map(str, item))}."
        )
    if not item:
        raise UnsupportedModalityError("An empty dict is not an input; give e.g. {'text': ..., 'image': ...}.")
    unknown = set(item) - MODALITY_KEYS
    if unknown:
        raise UnsupportedModalityError(
            f"An input dict has keys that are not modalities: {sorted(map(str, unknown))}. "
            f"Use keys from {sorted(MODALITY_KEYS)}."
        )
    return next(iter(item)) if len(item) == 1 else tuple(sorted(item))


def _object_modality(item: Any) -> str | None:
    module = type(item).__module__ or ""
    if module.startswith("PIL."):
        return "image"
    if "torchcodec" in module:
        return "video" if "Video" in type(item).__name__ else "audio"
    ndim = getattr(item, "ndim", None)
    if isinstance(ndim, int) and hasattr(item, "shape"):
        return {1: "audio", 2: "audio", 3: "image", 4: "video", 5: "video"}.get(ndim)
    return None


@dataclass(frozen=True)
class BatchKinds:
    """The modality of every input of a batch, decided once.

    Attributes:
        modality: The batch's modality: the one kind its inputs share, or "message" for a mix.
        groups: Positions of the inputs of each modality when the model takes each kind but not a mix of them
            (no chat template), so that each kind runs in passes of its own; None when one pass serves all.
    """

    modality: Modality
    groups: dict[Modality, list[int]] | None = None


def _all_plain_text(items: Sequence[Any], supported: Sequence[Modality] | None) -> bool:
    # Strings are only ever media paths when the model takes media; then each one is looked at.
    return all(type(item) is str for item in items) and (supported is None or list(supported) == ["text"])


def infer_batch_modality(items: Sequence[Any], supported: Sequence[Modality] | None = None) -> Modality:
    """The modality shared by ``items``; "message" when they differ (a mixed batch becomes a conversation)."""
    if not items or _all_plain_text(items, supported):
        return "text"  # the common case, without looking at each string
    kinds = {infer_modality(item, supported) for item in items}
    return kinds.pop() if len(kinds) == 1 else "message"


def classify_batch(items: Sequence[Any], supported: Sequence[Modality], owner: str) -> BatchKinds:
    """Decide the modality of each of ``items`` once, and check that ``owner`` (e.g. "This model") takes them.

    When the owner takes each kind alone but not a mix, the items are grouped by kind.

    Raises:
        UnsupportedModalityError: an input is of no known kind, or of a kind the owner cannot take (the message
            names the kinds found and the ones taken).
    """
    if not items or _all_plain_text(items, supported):
        return BatchKinds("text") if supports(supported, "text") else _refuse(owner, "text", ["text"], supported)
    per_item = [infer_modality(item, supported) for item in items]
    kinds = set(per_item)
    modality = next(iter(kinds)) if len(kinds) == 1 else "message"
    if supports(supported, modality):
        return BatchKinds(modality)
    if len(kinds) > 1 and "message" not in supported and all(supports(supported, kind) for kind in kinds):
        groups: dict[Modality, list[int]] = {}
        for position, kind in enumerate(per_item):
            groups.setdefault(kind, []).append(position)
        return BatchKinds(modality, groups)  # a mixed batch of supported kinds: one pass per modality
    return _refuse(owner, modality, [format_modality(kind) for kind in kinds], supported)


def _refuse(owner: str, modality: Modality, kinds: list[str], supported: Sequence[Modality]) -> BatchKinds:
    mixed = f" (a mix of {', '.join(sorted(kinds))})" if len(kinds) > 1 else ""
    raise UnsupportedModalityError(
        f"{owner} cannot take {format_modality(modality)!r} inputs{mixed}; it takes "
        f"{', '.join(format_modality(m) for m in supported)}. Pass inputs of those kinds, or use a model whose "
        "input module supports this modality."
    )


def supports(supported: Sequence[Modality], modality: Modality) -> bool:
    """Whether a model taking ``supported`` takes ``modality`` (a chat model takes any mix of its parts)."""
    if isinstance(modality, tuple):
        modality = tuple(sorted(modality))
    if modality in supported:
        return True
    return isinstance(modality, tuple) and "message" in supported and all(part in supported for part in modality)


def check_modality(items: Sequence[Any], supported: Sequence[Modality], owner: str) -> Modality:
    """The batch modality of ``items`` ("message" for a mix).

    Raises:
        UnsupportedModalityError: ``owner`` (e.g. "This model") cannot take it. A mix of kinds the owner takes
            one by one passes.
    """
    return classify_batch(items, supported, owner).modality
