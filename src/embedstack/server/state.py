"""What the routes share: settings, the service, metrics, the served model's names and its kind."""

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
class ServerState:
    """One server's shared objects (``app.state.embedstack``).

    Attributes:
        model_name: The name ``GET /v1/models`` lists.
        aliases: Other names a request's ``model`` may use for it (the path or Hub id it was loaded from).
        created: Unix time the server started (OpenAI's ``created``).
    """

    settings: ServerSettings
    service: EmbeddingService
    metrics: Metrics
    model_name: str
    aliases: frozenset[str]
    created: int

    def check_model(self, name: str | None) -> None:
        """404 unless ``name`` (when given) names the served model."""
        if name is None or name == self.model_name or name in self.aliases:
            return
        raise ApiError(
            404,
            f"The model {name!r} is not served here; this server serves {self.model_name!r}."
            f"{close_matches(name, [self.model_name])} See GET /v1/models.",
            "model_not_found",
            "model",
        )

    def check_kind(self, needed: ModelKind, path: str) -> None:
        """400 unless the served model is of the kind the route ``path`` needs."""
        if self.service.kind != needed:
            raise wrong_kind(self.service.kind, needed, path, self.model_name)


def server_state(request: Request) -> ServerState:
    """The state of the server handling ``request``."""
    return request.app.state.embedstack
