"""Sparse embeddings: :class:`SparseEncoder` (SPLADE) gives vocabulary-sized, mostly zero vectors."""

from embedstack.sparse_encoder.model import SparseEncoder

__all__ = ["SparseEncoder"]
