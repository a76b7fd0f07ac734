"""Building blocks of a model: the module contract, the built-in modules and the legacy ones older folders use.

Every file in this package (and its ``transformer`` and ``legacy`` subpackages) is imported here, and each
built-in declares itself to the registry with ``@register_module``: a new built-in module is one new file.
The names below are the public API; a module added later is reachable here by its class name too.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from embedstack.modules.base import InputModule, Module, ModuleWithWeights
from embedstack.modules.dense import Dense
from embedstack.modules.legacy.bow import BoW
from embedstack.modules.legacy.clip_model import CLIPModel
from embedstack.modules.legacy.cnn import CNN
from embedstack.modules.legacy.dropout import Dropout
from embedstack.modules.legacy.layer_norm import LayerNorm
from embedstack.modules.legacy.lstm import LSTM
from embedstack.modules.legacy.weighted_layer_pooling import WeightedLayerPooling
from embedstack.modules.legacy.word_embeddings import WordEmbeddings
from embedstack.modules.legacy.word_tokenizers import PhraseTokenizer, WhitespaceTokenizer, WordTokenizer
from embedstack.modules.legacy.word_weights import WordWeights
from embedstack.modules.normalize import Normalize
from embedstack.modules.pooling import Pooling
from embedstack.modules.router import Asym, Router
from embedstack.modules.sparse_auto_encoder import SparseAutoEncoder
from embedstack.modules.sparse_static_embedding import SparseStaticEmbedding
from embedstack.modules.static_embedding import StaticEmbedding
from embedstack.modules.transformer.module import Transformer
from embedstack.registry import registered_modules


def _import_every_module_file() -> None:
    """Import each file of the package, so that every built-in registers itself."""
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(info.name)


_import_every_module_file()

# Every module class a modules.json entry can name, by class name: derived from the registry.
BUILTIN_MODULE_NAMES: tuple[str, ...] = tuple(registered_modules(builtin_only=True))


def __getattr__(name: str) -> Any:
    spec = registered_modules(builtin_only=True).get(name)
    if spec is None:
        raise AttributeError(f"module 'embedstack.modules' has no attribute {name!r}")
    return spec.cls


__all__ = [
    "Module",
    "InputModule",
    "ModuleWithWeights",
    "Transformer",
    "Pooling",
    "Dense",
    "Normalize",
    "Router",
    "Asym",
    "StaticEmbedding",
    "SparseStaticEmbedding",
    "SparseAutoEncoder",
    "WordEmbeddings",
    "WordWeights",
    "BoW",
    "CNN",
    "LSTM",
    "LayerNorm",
    "Dropout",
    "WeightedLayerPooling",
    "CLIPModel",
    "WordTokenizer",
    "WhitespaceTokenizer",
    "PhraseTokenizer",
    "BUILTIN_MODULE_NAMES",
]
