"""Putting back the chat template's closing tokens that truncation cut off.

A chat template ends every conversation with fixed tokens (an end-of-turn marker, an assistant prefix). When a
long conversation is truncated, those go first, yet last-token pooling reads exactly that position. As in
sentence-transformers 6.2, the closing tokens are found by rendering the conversation's skeleton with two
different fillers (their longest common token tail is the template's), and written over the last real tokens of
every row that reached ``max_length``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

_CACHE_LIMIT = 256
_FILLERS = ("0", "1 2 3 4")  # tokenize differently, so a shared tail is template, never content


def truncation_limit(
    modality_kwargs: dict[str, dict], common: dict[str, Any], chat_kwargs: dict[str, Any], default_max: int | None
) -> int | None:
    """The length rows are truncated to, or None when the call does not truncate."""
    text = modality_kwargs["text"]
    truncation = chat_kwargs.get("truncation", text.get("truncation", common.get("truncation")))
    max_length = chat_kwargs.get("max_length", text.get("max_length", common.get("max_length")))
    active = bool(truncation) or (truncation is None and max_length is not None)
    if not active or truncation == "do_not_truncate":
        return None
    return max_length if max_length is not None else default_max


def restore_suffix(
    features: dict[str, Any],
    conversations: list[list[dict]],
    max_length: int,
    render: Callable[[list[dict]], list[int]],
    cache: dict[str, list[int]],
) -> None:
    """Overwrite the tail of each truncated row of ``features["input_ids"]`` with the template's closing tokens.

    Works in place. ``render`` tokenizes one conversation without padding or truncation.
    """
    ids, mask = features.get("input_ids"), features.get("attention_mask")
    if not isinstance(ids, torch.Tensor) or not isinstance(mask, torch.Tensor) or ids.ndim != 2:
        return
    width = ids.shape[1]
    if width < max_length:
        return
    lengths = mask.long().sum(1).tolist()  # real tokens per row
    left_padded = (mask[:, 0] == 0).tolist()
    for row, conversation in enumerate(conversations[: ids.shape[0]]):
        if lengths[row] < max_length:
            continue
        suffix = _template_suffix(conversation, render, cache)
        keep = min(len(suffix), lengths[row])
        if keep:
            end = width if left_padded[row] else lengths[row]
            ids[row, end - keep : end] = torch.tensor(suffix[-keep:], dtype=ids.dtype)


def _template_suffix(conversation: list[dict], render: Callable, cache: dict[str, list[int]]) -> list[int]:
    if not conversation or not _text_only(conversation):
        return []  # cutting media placeholder tokens would desync them from the media features
    key = repr(_skeleton(conversation, ""))
    if key in cache:
        return cache[key]
    suffix: list[int] = []
    try:
        first, second = (render(_skeleton(conversation, filler)) for filler in _FILLERS)
        common = 0
        for left, right in zip(reversed(first), reversed(second)):
            if left != right:
                break
            common += 1
        if 0 < common < min(len(first), len(second)):
            suffix = first[len(first) - common :]
    except Exception as exc:  # a template that cannot render a skeleton keeps the truncated row as it is
        logger.debug("Could not find the chat template's closing tokens: %s", exc)
    cache[key] = suffix
    if len(cache) > _CACHE_LIMIT:
        cache.pop(next(iter(cache)))
    return suffix


def _skeleton(conversation: list[dict], filler: str) -> list[dict]:
    """Each non-system message's content replaced by ``filler``; system messages (a prompt) kept whole."""
    out = []
    for message in conversation:
        if not isinstance(message, dict) or message.get("role") == "system":
            out.append(message)
        else:
            content = [{"type": "text", "text": filler}] if isinstance(message.get("content"), list) else filler
            out.append({**message, "content": content})
    return out


def _text_only(conversation: list[dict]) -> bool:
    for message in conversation:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            if any(not isinstance(part, dict) or part.get("type", "text") != "text" for part in content):
                return False
        elif not isinstance(content, str):
            return False
    return True
