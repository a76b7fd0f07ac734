"""The model kinds, by the class name a folder saves as its ``model_type``; what the CLI and the server load.

A folder says which kind it holds (:func:`~embedstack.persistence.layout.saved_model_type`); :func:`load_model`
builds that kind. The Hub is resolved here, once, to a local folder, so the kind can be read from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedstack.base import BaseModel
from embedstack.cross_encoder import CrossEncoder
from embedstack.model import SentenceTransformer
from embedstack.persistence.hub import HubOptions, resolve_model_path
from embedstack.persistence.layout import saved_model_type
from embedstack.sparse_encoder import SparseEncoder

MODEL_KINDS: dict[str, type[BaseModel]] = {
    "SentenceTransformer": SentenceTransformer,
    "CrossEncoder": CrossEncoder,
    "SparseEncoder": SparseEncoder,
}


def model_kind(model_name_or_path: str, backend: str = "torch") -> tuple[type[BaseModel], Path]:
    """The class of the model ``model_name_or_path`` holds, and its local folder.

    A bare Hub name is looked up under "sentence-transformers/" (the CLI's and server's default kind).

    Raises:
        ValueError: The folder saves a kind embedstack does not have.
    """
    folder = resolve_model_path(model_name_or_path, HubOptions(), backend=backend)
    kind = saved_model_type(folder)
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"{folder / 'config_sentence_transformers.json'} says model_type {kind!r}; embedstack loads "
            f"{sorted(MODEL_KINDS)}. Load it with the library that saved it."
        )
    return MODEL_KINDS[kind], folder


def load_model(model_name_or_path: str, **kwargs: Any) -> BaseModel:
    """The model in ``model_name_or_path``, as the kind its folder saves (``kwargs`` go to the class)."""
    cls, folder = model_kind(model_name_or_path, kwargs.get("backend", "torch"))
    if cls is CrossEncoder:
        kwargs.pop("cache", None)  # an embedding cache holds vectors (dense or sparse); a reranker's scores are not
    return cls(str(folder), **kwargs)
