"""Rerankers: :class:`CrossEncoder` scores (query, document) pairs read together, on the shared model base."""

from embedstack.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoder"]
