"""embedstack: modular sentence-embedding models, compatible with the sentence-transformers format.

Heavy imports (torch, transformers) happen on first use of a public name, so ``embedstack --help`` is fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from embedstack._version import __version__

__all__ = [
    "CrossEncoder",
    "SentenceTransformer",
    "SimilarityFunction",
    "SparseEncoder",
    "quantize_embeddings",
    "__version__",
]

_LAZY = {
    "CrossEncoder": "embedstack.cross_encoder",
    "SentenceTransformer": "embedstack.model",
    "SimilarityFunction": "embedstack.similarity",
    "SparseEncoder": "embedstack.sparse_encoder",
    "quantize_embeddings": "embedstack.quantization",
}

if TYPE_CHECKING:
    from embedstack.cross_encoder import CrossEncoder
    from embedstack.model import SentenceTransformer
    from embedstack.quantization import quantize_embeddings
    from embedstack.similarity import SimilarityFunction
    from embedstack.sparse_encoder import SparseEncoder


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedstack' has no attribute {name!r}")
