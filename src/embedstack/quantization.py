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
) -> Any:
    """Quantize (N, D) embeddings, or a list of multi-vector (tokens, D) matrices.

    Args:
        embeddings: Float embeddings, shape (N, D); or a list of (tokens, D) matrices, which share one set of
            int8/uint8 buckets.
        precision: One of ``PRECISIONS``.
        ranges: Per-dimension (2, D) min/max for int8/uint8; otherwise from ``calibration_embeddings``
            or the embeddings themselves.
        calibration_embeddings: Embeddings to take the ranges from.

    Returns:
        An ndarray: float32 (N, D), int8/uint8 (N, D), or binary/ubinary (N, ceil(D/8)); a list of them for a
        list of matrices; ``[]`` for ``[]``.
    """
    if isinstance(embeddings, list):
        if not embeddings:
            return []
        items = [_to_numpy(e) if isinstance(e, torch.Tensor) else e for e in embeddings]
        if isinstance(items[0], np.ndarray) and items[0].ndim == 2:
            return _quantize_matrices(items, precision, ranges, calibration_embeddings)
        embeddings = np.array(items)
    embeddings = _to_numpy(embeddings) if isinstance(embeddings, torch.Tensor) else embeddings
    if embeddings.dtype in (np.int8, np.uint8):
        raise ValueError("quantize_embeddings needs float embeddings, not already-quantized int8/uint8 ones.")
    if embeddings.ndim == 2 and embeddings.shape[0] == 0 and precision != "float32":
        return _empty(embeddings.shape[1], precision)
    if precision == "float32":
        return embeddings.astype(np.float32)
    if precision in ("int8", "uint8"):
        if ranges is None:
            ranges = _ranges(embeddings, precision, calibration_embeddings)
        return _bucket(embeddings, np.asarray(ranges).astype(np.float32, copy=False), precision)
    if precision in ("binary", "ubinary"):
        bits = np.packbits(embeddings > 0, axis=-1)  # one bit per dimension: its sign
        return bits if precision == "ubinary" else (bits - 128).astype(np.int8)
    raise ValueError(f"precision {precision!r} is not supported; choose one of {list(PRECISIONS)}.")


def _empty(width: int, precision: str) -> np.ndarray:
    """Nothing to calibrate or pack: an empty result of the precision's width and type."""
    width = width if precision.endswith("int8") else (width + 7) // 8
    return np.zeros((0, width), dtype=np.uint8 if precision.startswith("u") else np.int8)


def _bucket(embeddings: np.ndarray, ranges: np.ndarray, precision: str) -> np.ndarray:
    """int8/uint8 codes: each dimension's (min, max) range cut into 256 buckets."""
    starts = ranges[0, :]
    steps = (ranges[1, :] - starts) / 255
    steps = np.where(steps == 0, 1, steps)  # a constant dimension maps to bucket 0
    codes = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    return codes.astype(np.uint8) if precision == "uint8" else (codes - 128).astype(np.int8)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().float().numpy()


def _quantize_matrices(
    matrices: list[np.ndarray], precision: Precision, ranges: np.ndarray | None, calibration: np.ndarray | None
) -> list[np.ndarray]:
    """Multi-vector embeddings: every matrix quantized with the same int8/uint8 buckets."""
    if precision.endswith("int8") and ranges is None:
        data = np.concatenate(matrices, axis=0) if calibration is None else calibration
        if len(data):
            ranges = _ranges(data, precision, calibration)
    return [quantize_embeddings(matrix, precision, ranges, calibration) for matrix in matrices]


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
