"""Working with sparse vectors: stacking rows, decoding them into tokens, and their sparsity statistics."""

from __future__ import annotations

from typing import Any

import torch


def stacked_rows(rows: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """One (N, dim) sparse COO tensor from N (dim,) rows, dense or sparse (what worker processes return)."""
    if isinstance(rows, torch.Tensor):
        return rows.to_sparse().coalesce() if not rows.is_sparse else rows.coalesce()
    return torch.stack([row.to_sparse() if not row.is_sparse else row for row in rows]).coalesce()


def decode_rows(embeddings: torch.Tensor, tokenizer: Any, top_k: int | None = None) -> list[Any]:
    """``[(token, weight), ...]`` by descending weight for a (dim,) vector; one such list per row of (N, dim).

    Only non-zero weights appear; ``top_k`` keeps the largest of them.
    """
    if top_k is not None and top_k <= 0:
        raise ValueError(f"top_k must be a positive integer, got {top_k}.")
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError(f"Expected torch.Tensor, got {type(embeddings)}")  # the reference's messages
    single = embeddings.ndim == 1
    if embeddings.ndim not in (1, 2):
        raise ValueError(f"Input tensor must be 1D or 2D, got {embeddings.ndim}D.")
    rows = embeddings.unsqueeze(0) if single else embeddings
    rows = (rows if rows.is_sparse else rows.to_sparse()).coalesce()
    indices, values = rows.indices(), rows.values()
    decoded: list[list[tuple[str, float]]] = []
    for row in range(rows.shape[0]):
        in_row = indices[0] == row
        tokens, weights = indices[1][in_row], values[in_row]
        order = torch.argsort(weights, descending=True, stable=True)[:top_k]
        names = tokenizer.convert_ids_to_tokens(tokens[order].tolist())
        decoded.append(list(zip(names, weights[order].tolist())))
    return decoded[0] if single else decoded


def sparsity_of(embeddings: torch.Tensor) -> dict[str, float]:
    """Mean non-zero weights per vector (``active_dims``) and mean share of zero weights (``sparsity_ratio``)."""
    if not isinstance(embeddings, torch.Tensor):
        raise TypeError("Embeddings must be a torch.Tensor")
    if embeddings.ndim not in (1, 2):
        raise ValueError(f"Expected a 1D or 2D tensor, got {embeddings.ndim}D.")
    rows = embeddings.unsqueeze(0) if embeddings.ndim == 1 else embeddings
    count, width = rows.shape
    if count == 0 or width == 0:
        return {"active_dims": 0.0, "sparsity_ratio": 1.0}
    if rows.is_sparse:
        rows = rows.coalesce()
        active = float((rows.values() != 0).sum()) / count
    else:
        active = float((rows != 0).sum()) / count
    return {"active_dims": active, "sparsity_ratio": 1.0 - active / width}
