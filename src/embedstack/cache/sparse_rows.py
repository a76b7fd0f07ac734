"""Sparse rows: a sparse encoder's (N, vocab) weights split into rows of indices and values, and stacked back.

The cache stores each row on its own: its value is the row's non-zero dimensions (int32, ascending) followed by their
weights, and its dtype text ``sparse:<vocab>:<dtype>`` carries what rebuilding the (N, vocab) tensor needs. The
command line writes the same rows to .jsonl (``engine.sparse_rows.csr_parts``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from embedstack.engine.sparse_rows import csr_parts

PREFIX = "sparse"
_DTYPES = {str(dtype): dtype for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)}


class SparseRow(NamedTuple):
    """One vector: its non-zero dimensions (int64, ascending), their weights and the vector's width."""

    indices: torch.Tensor  # (nnz,)
    values: torch.Tensor  # (nnz,)
    width: int


def split_rows(matrix: torch.Tensor) -> list[SparseRow]:
    """The rows of a (N, dim) sparse COO tensor."""
    bounds, indices, values = csr_parts(matrix)
    width = int(matrix.shape[1])
    return [SparseRow(indices[a:b], values[a:b], width) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def dump_row(row: SparseRow) -> tuple[str, bytes]:
    """A row as the cache stores it: its dtype text and its bytes (indices as int32, then the values)."""
    data = row.indices.to(torch.int32).numpy().tobytes() + _raw(row.values)
    return f"{PREFIX}:{row.width}:{row.values.dtype}", data


def load_row(dtype: str, value: bytes) -> SparseRow:
    """A row back from what :func:`dump_row` gave."""
    _, width, name = dtype.split(":", 2)
    values_dtype = _DTYPES[name]
    count = len(value) // (4 + torch.empty(0, dtype=values_dtype).element_size())
    indices = _from_bytes(value[: 4 * count], torch.int32).long()
    return SparseRow(indices, _from_bytes(value[4 * count :], values_dtype), int(width))


def stack_rows(rows: list[SparseRow]) -> torch.Tensor:
    """One coalesced (N, dim) sparse COO tensor of ``rows`` (at least one)."""
    counts = torch.tensor([len(row.indices) for row in rows], dtype=torch.long)
    row_of = torch.repeat_interleave(torch.arange(len(rows)), counts)  # (nnz,)
    indices = torch.stack([row_of, torch.cat([row.indices for row in rows])])  # (2, nnz)
    values = torch.cat([row.values for row in rows])
    shape = (len(rows), rows[0].width)
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=True).coalesce()  # bytes from a file


def _raw(values: torch.Tensor) -> bytes:
    return values.contiguous().view(torch.uint8).numpy().tobytes()


def _from_bytes(data: bytes, dtype: torch.dtype) -> torch.Tensor:
    if not data:  # torch.frombuffer refuses an empty buffer
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype)
