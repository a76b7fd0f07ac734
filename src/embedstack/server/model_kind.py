"""Which kind of model a server runs, and the routes each kind answers.

A SentenceTransformer (bi-encoder) answers ``/v1/embeddings`` and ``/embed``; a CrossEncoder (reranker) answers
``/rerank`` and ``/v1/rerank``; a SparseEncoder (SPLADE) answers ``/embed_sparse``. A route of another kind gets a
400 naming both kinds and the routes to use. The kind is the loaded model's ``model_type``; ``embedstack serve
--model`` builds the kind its folder saves (``embedstack.kinds``, from ``persistence.layout.saved_model_type``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from embedstack.cross_encoder import CrossEncoder
from embedstack.model import SentenceTransformer
from embedstack.server.errors import ApiError
from embedstack.sparse_encoder import SparseEncoder

ModelKind = Literal["SentenceTransformer", "CrossEncoder", "SparseEncoder"]
KINDS: tuple[ModelKind, ...] = ("SentenceTransformer", "CrossEncoder", "SparseEncoder")
ServedModel = SentenceTransformer | CrossEncoder | SparseEncoder

# What each kind is for, and the routes that serve it (for error messages and /info).
PURPOSE = {
    "SentenceTransformer": "an embedding model",
    "CrossEncoder": "a reranker",
    "SparseEncoder": "a sparse embedding model",
}
ROUTES = {
    "SentenceTransformer": ("/v1/embeddings", "/embed"),
    "CrossEncoder": ("/rerank", "/v1/rerank"),
    "SparseEncoder": ("/embed_sparse",),
}
TASK = {"SentenceTransformer": "embeddings", "CrossEncoder": "reranking", "SparseEncoder": "sparse embedding"}


def kind_of(model: Any) -> ModelKind:
    """The kind of a loaded model: its ``model_type``, one of :data:`KINDS`.

    Raises:
        ValueError: The model is of another kind, which the server cannot serve.
    """
    kind = getattr(model, "model_type", "SentenceTransformer")
    if kind not in KINDS:
        raise ValueError(
            f"The server serves {', '.join(KINDS[:-1])} and {KINDS[-1]} models, not a {kind}. Load the model as one "
            "of those to serve it."
        )
    return kind


def wrong_kind(
    served: ModelKind, needed: ModelKind, path: str, model_name: str, others: Sequence[str] = ()
) -> ApiError:
    """The 400 for a route that needs a ``needed`` model, sent to the ``served`` model ``model_name``.

    ``others``: the names of the served models of the ``needed`` kind (on a server of several models).
    """
    routes = " and ".join(f"POST {route}" for route in ROUTES[served])
    if others:
        return ApiError(
            400,
            f"{path} cannot use {model_name!r}: it is a {served} ({PURPOSE[served]}, for {routes}); {TASK[needed]} "
            f"needs a {needed}. Send model {', '.join(repr(name) for name in others)} (served here), or leave "
            "model out.",
            "wrong_model_kind",
        )
    return ApiError(
        400,
        f"{path} is not served here: this server runs a {served} ({PURPOSE[served]}, {model_name!r}); "
        f"{TASK[needed]} needs a {needed}. Use {routes} on this server, or start one with a {needed} "
        f"(embedstack serve --model <{needed} folder>).",
        "wrong_model_kind",
    )
