"""embedstack: modular sentence-embedding models, compatible with the sentence-transformers format.

Heavy imports (torch, transformers) happen on first use of a public name, so ``embedstack --help`` is fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from embedstack._version import __version__
from embedstack.extras import TRAIN_PACKAGES, extra_module

__all__ = [
    "CrossEncoder",
    "InputExample",
    "SentenceTransformer",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
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

# Names from the train extra (accelerate, datasets): a missing extra raises MissingExtraError with the pip command.
_TRAINING = ("InputExample", "SentenceTransformerTrainer", "SentenceTransformerTrainingArguments")

if TYPE_CHECKING:
    from embedstack.cross_encoder import CrossEncoder
    from embedstack.model import SentenceTransformer
    from embedstack.quantization import quantize_embeddings
    from embedstack.similarity import SimilarityFunction
    from embedstack.sparse_encoder import SparseEncoder
    from embedstack.training import InputExample, SentenceTransformerTrainer, SentenceTransformerTrainingArguments


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        value = getattr(_training(), name)
        globals()[name] = value
        return value
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'embedstack' has no attribute {name!r}")


def _training() -> Any:
    return extra_module("embedstack.training", TRAIN_PACKAGES, "train")
