"""Shaping vectors into responses: Matryoshka truncation, normalization, float lists or base64, fast JSON.

A sparse encoder's weights become TEI's ``{"index", "value"}`` objects.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

TRUNCATED_HEADER = "X-Truncated-Inputs"  # inputs (or pairs) cut to the model's window, on every answer


class JSONResponse(Response):
    """JSON through orjson, numpy arrays included (float32 written as the shortest text that reads back equal)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize with orjson (numpy arrays included)."""
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def finish(vectors: np.ndarray, *, dimensions: int | None, normalize: bool) -> np.ndarray:
    """``vectors`` cut to ``dimensions``, then L2-normalized when asked.

    The same as ``encode(truncate_dim=..., normalize_embeddings=...)``.
    """
    if dimensions is not None:
        vectors = vectors[:, :dimensions]
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_base64(vector: np.ndarray) -> str:
    """Little-endian float32 bytes in base64, as OpenAI's ``encoding_format="base64"``."""
    return base64.b64encode(vector.astype("<f4", copy=False).tobytes()).decode("ascii")


def sparse_values(indices: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
    """One input's non-zero weights as TEI's ``[{"index": token id, "value": weight}, ...]``, in index order.

    The values stay numpy float32 scalars, which the JSON response writes as the shortest text that reads back equal.
    """
    return [{"index": index, "value": value} for index, value in zip(indices.tolist(), values)]
