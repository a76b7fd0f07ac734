"""What the routes share: settings, metrics, and the served models (each with its name, aliases, kind and service).

A request names its model in its ``model`` field (a name or an alias); without one, a route gets the first served
model of the kind it needs. A name that is not served is a 404; a model of another kind, a 400 naming the routes
that serve it.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from embedstack.errors import close_matches
from embedstack.server.errors import ApiError
from embedstack.server.metrics import Metrics
from embedstack.server.model_kind import ModelKind, wrong_kind
from embedstack.server.service import EmbeddingService
from embedstack.server.settings import ServerSettings


@dataclass
class ServedEntry:
    """One served model.

    Attributes:
        name: The name ``GET /v1/models`` lists and requests send as ``model``.
        aliases: Other names a request's ``model`` may use for it (the path or Hub id it was loaded from).
        service: Its queue, workers and tokenizer.
    """

    name: str
    aliases: frozenset[str]
    service: EmbeddingService

    @property
    def kind(self) -> ModelKind:
        """The model's kind: SentenceTransformer, CrossEncoder or SparseEncoder."""
        return self.service.kind


@dataclass
class ServerState:
    """One server's shared objects (``app.state.embedstack``).

    Attributes:
        models: The served models by name, in the order given (the first of each kind is that kind's default).
        created: Unix time the server started (OpenAI's ``created``).
    """

    settings: ServerSettings
    models: dict[str, ServedEntry]
    metrics: Metrics
    created: int

    @property
    def default(self) -> ServedEntry:
        """The first served model."""
        return next(iter(self.models.values()))

    @property
    def service(self) -> EmbeddingService:
        """The first served model's service (the only one, for a server of one model)."""
        return self.default.service

    @property
    def model_name(self) -> str:
        """The first served model's name."""
        return self.default.name

    def entry(self, name: str | None) -> ServedEntry:
        """The model a request's ``model`` field names (the first served model without one); 404 if none."""
        if name is None:
            return self.default
        for entry in self.models.values():
            if name == entry.name or name in entry.aliases:
                return entry
        served = list(self.models)
        listed = ", ".join(repr(model) for model in served)
        raise ApiError(
            404,
            f"The model {name!r} is not served here; this server serves {listed}.{close_matches(name, served)} "
            "See GET /v1/models.",
            "model_not_found",
            "model",
        )

    def resolve(self, name: str | None, needed: ModelKind, path: str) -> ServedEntry:
        """The model for a request to ``path`` (a route of ``needed`` models) that names ``name`` (or none).

        Raises:
            ApiError: 404 when ``name`` is not served; 400 when the model (or, without a name, every served model)
                is of another kind.
        """
        if name is not None:
            entry = self.entry(name)
            if entry.kind != needed:
                others = [other.name for other in self.models.values() if other.kind == needed]
                raise wrong_kind(entry.kind, needed, path, entry.name, others)
            return entry
        for entry in self.models.values():
            if entry.kind == needed:
                return entry
        raise wrong_kind(self.default.kind, needed, path, self.default.name)

    def check_serves(self, needed: ModelKind, path: str) -> None:
        """400 unless a served model is of the kind the route ``path`` needs (before its body is read)."""
        if not any(entry.kind == needed for entry in self.models.values()):
            raise wrong_kind(self.default.kind, needed, path, self.default.name)


def server_state(request: Request) -> ServerState:
    """The state of the server handling ``request``."""
    return request.app.state.embedstack
