"""Building blocks of a model: the module contract and the built-in modules."""

from embedstack.modules.base import InputModule, Module
from embedstack.modules.dense import Dense
from embedstack.modules.normalize import Normalize
from embedstack.modules.pooling import Pooling
from embedstack.modules.transformer import Transformer

BUILTIN_MODULE_NAMES: tuple[str, ...] = ("Transformer", "Pooling", "Dense", "Normalize")

__all__ = ["Module", "InputModule", "Transformer", "Pooling", "Dense", "Normalize", "BUILTIN_MODULE_NAMES"]
