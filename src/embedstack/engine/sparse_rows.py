"""Rows of a sparse (N, dim) tensor: where each row's non-zero weights start and end, without a dense matrix.

What the cache, the Parquet shards and the server's ``/embed_sparse`` read a sparse encoder's output through.
"""

from __future__ import annotations

import torch


def csr_parts(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(bounds, indices, values)`` of a (N, dim) sparse COO tensor: row i is ``bounds[i]:bounds[i + 1]``.

    Indices ascend within each row (the tensor is coalesced); every tensor is on the CPU.

    Example:
        >>> matrix = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 3.0]]).to_sparse()
        >>> bounds, indices, values = csr_parts(matrix)
        >>> bounds.tolist(), indices.tolist(), values.tolist()
        ([0, 1, 3], [1, 0, 2], [2.0, 1.0, 3.0])
    """
    matrix = matrix.detach().coalesce().cpu()
    rows, indices = matrix.indices()  # (nnz,), (nnz,)
    bounds = torch.searchsorted(rows, torch.arange(matrix.shape[0] + 1))  # (N + 1,)
    return bounds, indices, matrix.values()
