"""Raw inputs -> the processor's inputs: one batch grouped by modality, or turned into chat conversations.

The rules follow sentence-transformers 6.2 (``InputFormatter.parse_inputs``): a batch of one modality keeps it
(a dict batch keeps its keys), a mixed batch becomes conversations; audio dicts give their waveform and
sampling rate, videos their frames and metadata (see video.py).
"""

from __future__ import annotations

from typing import Any, Literal

from embedstack.errors import UnsupportedModalityError
from embedstack.inputs import MODALITY_KEYS, Modality, infer_modality
from embedstack.modules.transformer.video import VideoUnwrapper, as_sequence, is_video_frames

MessageFormat = Literal["structured", "flat"]


def parse_inputs(
    inputs: list[Any],
    supported: list[Modality],
    message_style: MessageFormat,
    *,
    batch_modality: Modality | None = None,
) -> tuple[Modality, dict[str, list], dict[str, dict[str, Any]]]:
    """``(modality, {modality: values}, extra processor kwargs per modality)`` for one batch.

    A ``batch_modality`` other than "message" says every input is of that modality: none is looked at again.
    """
    extra: dict[str, dict[str, Any]] = {}
    videos: VideoUnwrapper | None = None
    typed: list[tuple[Modality, Any]] = []
    known = batch_modality if batch_modality is not None and batch_modality != "message" else None
    for item in inputs:
        modality = known if known is not None else infer_modality(item, supported)
        if (
            isinstance(item, dict)
            and isinstance(modality, str)
            and modality in MODALITY_KEYS
            and set(item) == {modality}
        ):
            item = item[modality]
        if modality == "video" or (isinstance(modality, tuple) and "video" in modality) or modality == "message":
            videos = videos or VideoUnwrapper()
        typed.append((modality, _unwrap(modality, item, extra, videos)))
    if videos is not None and (metadata := videos.metadata()) is not None:
        extra.setdefault("video", {})["video_metadata"] = metadata
    kinds = {modality for modality, _ in typed}
    if len(kinds) > 1:  # conversations stay as they are; every other input becomes one
        messages = [
            v if m == "message" else to_message(v if isinstance(m, tuple) else {m: v}, message_style) for m, v in typed
        ]
        return "message", {"message": messages}, extra
    modality = kinds.pop()
    values = [value for _, value in typed]
    if isinstance(modality, str):
        return modality, {modality: values}, extra
    keys = tuple(values[0])
    if "message" in supported and any(tuple(value) != keys for value in values[1:]):
        return "message", {"message": [to_message(value, message_style) for value in values]}, extra
    return modality, {key: [value[key] for value in values] for key in keys}, extra


def _unwrap(modality: Modality, item: Any, extra: dict[str, dict[str, Any]], videos: VideoUnwrapper | None) -> Any:
    """One input as the processor takes it: audio and video dicts unwrapped, a lone message put in a list."""
    if modality == "audio":
        return _unwrap_audio(item, extra)
    if modality == "video" and videos is not None:
        return videos.unwrap(item)
    if isinstance(modality, tuple):
        item = dict(item)
        if "audio" in item:
            item["audio"] = _unwrap_audio(item["audio"], extra)
        if "video" in item and videos is not None:
            item["video"] = videos.unwrap(item["video"])
        return item
    if modality == "message":
        conversation = [item] if isinstance(item, dict) else item
        return videos.message(conversation) if videos is not None else conversation
    return item


def _unwrap_audio(item: Any, extra: dict[str, dict[str, Any]]) -> Any:
    """The waveform of an audio input; a ``{"array", "sampling_rate"}`` dict records its rate in ``extra``.

    Torch tensors become numpy arrays, which feature extractors take (sentence-transformers passes them on and
    the feature extractor fails).
    """
    if hasattr(item, "detach") and hasattr(item, "numpy"):
        return item.detach().cpu().numpy()
    if isinstance(item, dict) and "array" in item:
        item = {**item, "array": _unwrap_audio(item["array"], {})}
        rate = item.get("sampling_rate")
        if rate is not None:
            previous = extra.setdefault("audio", {}).setdefault("sampling_rate", rate)
            if previous != rate:
                raise UnsupportedModalityError(
                    f"One batch holds audio at {previous} Hz and at {rate} Hz; resample to one rate first."
                )
        return item["array"]
    return item


def to_message(typed: dict[str, Any], style: MessageFormat, role: str = "user") -> list[dict[str, Any]]:
    """One user message holding ``typed`` ({modality: value}); flat content when there is a single value.

    A list under "video" is one video's frames when its items are images, else several videos.
    """
    if style == "flat" and len(typed) == 1:
        return [{"role": role, "content": next(iter(typed.values()))}]
    content: list[dict[str, Any]] = []
    for modality, value in typed.items():
        if modality == "video":
            items = [value] if is_video_frames(value) else as_sequence(value)
            items = [list(item) if isinstance(item, tuple) else item for item in items]
        else:
            items = list(value) if modality in MODALITY_KEYS and isinstance(value, (list, tuple)) else [value]
        content.extend({"type": modality, modality: item} for item in items)
    return [{"role": role, "content": content}]


def batch_to_messages(modality: Modality, values: dict[str, list], style: MessageFormat) -> list[list[dict]]:
    """Every input of a one-modality batch as a conversation."""
    keys = [key for key in values if key in ((modality,) if isinstance(modality, str) else modality)]
    count = len(next(iter(values.values()))) if values else 0
    return [to_message({key: values[key][index] for key in keys}, style) for index in range(count)]


def with_system_prompt(conversations: list[list[dict]], prompt: str, style: MessageFormat) -> list[list[dict]]:
    """Each conversation with ``prompt`` as a system message in front."""
    content: Any = prompt if style == "flat" else [{"type": "text", "text": prompt}]
    return [[{"role": "system", "content": content}, *conversation] for conversation in conversations]
