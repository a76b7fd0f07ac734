"""Embedding quantization: int8/uint8 by per-dimension ranges, binary/ubinary by sign bits."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import torch

logger = logging.getLogger(__name__)

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


def quantize_embeddings(
    embeddings: torch.Tensor | np.ndarray | list[Any],
    precision: Precision,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Quantize (N, D) embeddings.

    Args:
        embeddings: Float embeddings, shape (N, D).
        precision: One of ``PRECISIONS``.
        ranges: Per-dimension (2, D) min/max for int8/uint8; otherwise from ``calibration_embeddings``
            or the embeddings themselves.
        calibration_embeddings: Embeddings to take the ranges from.

    Returns:
        An ndarray: float32 (N, D), int8/uint8 (N, D), or binary/ubinary (N, ceil(D/8)).
    """
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.detach().cpu().float().numpy()
    elif isinstance(embeddings, list):
        embeddings = np.array(
            [e.detach().cpu().float().numpy() if isinstance(e, torch.Tensor) else e for e in embeddings]
        )
    if embeddings.dtype in (np.int8, np.uint8):
        raise ValueError("quantize_embeddings needs float embeddings, not already-quantized int8/uint8 ones.")
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            ranges = _ranges(embeddings, precision, calibration_embeddings)
        ranges = np.asarray(ranges).astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)  # a constant dimension maps to bucket 0
        codes = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
        return codes.astype(np.uint8) if precision == "uint8" else (codes - 128).astype(np.int8)
    if precision == "binary":
        return (np.packbits(embeddings > 0, axis=-1) - 128).astype(np.int8)
    if precision == "ubinary":
        return np.packbits(embeddings > 0, axis=-1)
    raise ValueError(f"precision {precision!r} is not supported; choose one of {list(PRECISIONS)}.")


def _ranges(embeddings: np.ndarray, precision: str, calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None:
        if embeddings.ndim == 1 or embeddings.shape[0] < 2:
            raise ValueError(
                f"{precision} quantization of a single embedding needs `ranges` or `calibration_embeddings`: "
                "per-dimension ranges cannot be computed from one row."
            )
        if embeddings.shape[0] < 100:
            logger.warning(
                "Computing %s quantization ranges from only %d embeddings; pass calibration_embeddings (or ranges) "
                "computed on more data for stable buckets.",
                precision,
                embeddings.shape[0],
            )
        calibration = embeddings
    return np.vstack((calibration.min(axis=0), calibration.max(axis=0)))
