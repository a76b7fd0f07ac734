"""Cache keys: the model's fingerprint and every encode setting that changes a vector, then the input's bytes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from embedstack.cache.fingerprint import model_fingerprint


def settings_key(model: Any, settings: dict[str, Any]) -> str | None:
    """A hex digest of the model fingerprint and ``settings``; None when a setting has no stable text form."""
    try:
        text = json.dumps(settings, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
    digest = hashlib.blake2b(digest_size=32)
    digest.update(model_fingerprint(model).encode("ascii"))
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def input_bytes(item: Any) -> bytes | None:
    """The bytes that identify a text or a text pair; None for other inputs (images, audio, ...: not cached)."""
    if isinstance(item, str):
        return b"t" + item.encode("utf-8", "surrogatepass")
    if isinstance(item, (tuple, list)) and all(isinstance(part, str) for part in item):
        return b"p" + json.dumps(list(item), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return None


def input_key(settings: str, data: bytes) -> bytes:
    """The 32-byte key of one input under ``settings``."""
    digest = hashlib.blake2b(digest_size=32, key=bytes.fromhex(settings)[:32])
    digest.update(data)
    return digest.digest()
