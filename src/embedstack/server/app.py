"""The FastAPI application: routes, error handlers, auth and metrics middleware, the worker's lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from embedstack._version import __version__
from embedstack.server.auth import BearerAuth
from embedstack.server.errors import ApiError, error_response
from embedstack.server.metrics import Metrics
from embedstack.server.middleware import RequestMetrics
from embedstack.server.model_kind import ServedModel
from embedstack.server.responses import JSONResponse
from embedstack.server.routes_embed import router as embed_router
from embedstack.server.routes_ops import router as ops_router
from embedstack.server.routes_rerank import router as rerank_router
from embedstack.server.routes_sparse import router as sparse_router
from embedstack.server.service import CPU_WORKERS, EmbeddingService, cpu_occupancy
from embedstack.server.settings import ServerSettings
from embedstack.server.state import ServedEntry, ServerState

logger = logging.getLogger(__name__)
SHUTDOWN_S = 30.0  # how long the workers of every served model may take, together, to finish their rounds
DEFAULT_MODEL_NAME = "embedstack-model"


@dataclass(frozen=True)
class NamedModel:
    """A model to serve beside others, under ``name`` (what requests send as ``model``) and ``aliases``."""

    name: str
    model: ServedModel
    aliases: frozenset[str] = frozenset()


def create_app(
    model: ServedModel | Sequence[NamedModel],
    settings: ServerSettings | None = None,
    *,
    aliases: Iterable[str] = (),
) -> FastAPI:
    """An ASGI application serving ``model`` (or several models); run it with uvicorn or :func:`start_server`.

    The model workers start and stop with the application's lifespan. A SentenceTransformer answers the
    embedding routes, a CrossEncoder the rerank routes, a SparseEncoder ``/embed_sparse``; a request's ``model``
    field picks one of several served models (without it: the first served model of the route's kind). Each model
    has its own queue and workers; their rounds share the CPU's cores by demand, and a model whose batches fail does
    not stop the others.

    Args:
        model: The model to serve (a SentenceTransformer, a CrossEncoder or a SparseEncoder), or a sequence of
            :class:`NamedModel` to serve several in one process.
        settings: Limits, batch sizes, auth (default: ``ServerSettings()``); each model's queue gets the limits.
        aliases: Other names a request's ``model`` field may use for a single ``model`` (e.g. its path).

    Raises:
        ValueError: Two served models share a name or an alias, or the sequence is empty.

    Example:
        >>> app = create_app(model, ServerSettings(model_name="minilm"))
        >>> import uvicorn
        >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    settings = settings or ServerSettings()
    named = _named(model, settings, aliases)
    metrics = Metrics()
    occupancy = cpu_occupancy(settings.workers or CPU_WORKERS)  # one set of CPU slots for every model
    entries = {
        entry.name: ServedEntry(
            entry.name, entry.aliases,
            EmbeddingService(entry.model, settings, metrics.for_model(entry.name), occupancy=occupancy),
        )
        for entry in named
    }  # fmt: skip
    state = ServerState(settings, entries, metrics, int(time.time()))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[EmbeddingService] = []
        try:
            for entry in entries.values():
                entry.service.start()
                started.append(entry.service)
            yield
        finally:  # every queue stops taking work at once; the workers finish what they hold within one deadline
            for service in started:
                service.queue.close()
            deadline = time.monotonic() + SHUTDOWN_S
            for service in started:
                await asyncio.to_thread(service.stop, max(0.0, deadline - time.monotonic()))

    app = FastAPI(
        title="embedstack server",
        version=__version__,
        description="Sentence embeddings over HTTP (OpenAI's /v1/embeddings, TEI's /embed), reranking with a "
        "cross-encoder (TEI's /rerank, Cohere's and Jina's /v1/rerank) or sparse embeddings with a sparse encoder "
        "(TEI's /embed_sparse); one process serves several models, each with its own batching queue.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.embedstack = state
    app.include_router(embed_router)
    app.include_router(rerank_router)
    app.include_router(sparse_router)
    app.include_router(ops_router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(BearerAuth, api_key=settings.api_key)
    routers = (embed_router, rerank_router, sparse_router, ops_router)
    paths = frozenset(route.path for router in routers for route in router.routes if hasattr(route, "path"))
    app.add_middleware(RequestMetrics, metrics=metrics, routes=paths)
    return app


def _named(
    model: ServedModel | Sequence[NamedModel], settings: ServerSettings, aliases: Iterable[str]
) -> list[NamedModel]:
    """The served models with their names, checked: no name or alias names two models."""
    if isinstance(model, (list, tuple)):
        named = list(model)
    else:
        return [NamedModel(settings.model_name or DEFAULT_MODEL_NAME, model, frozenset(aliases))]  # type: ignore[arg-type]
    if not named:
        raise ValueError("create_app got no model to serve; pass a model or a non-empty sequence of NamedModel.")
    names = [entry.name for entry in named]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(
                f"The model name {name!r} is given to {names.count(name)} served models; give each its own name "
                "(embedstack serve: --model-name, or 'name' in the models file)."
            )
    for entry in named:
        for alias in sorted(entry.aliases & set(names) - {entry.name}):
            raise ValueError(
                f"Two served models answer to {alias!r} ({alias!r} and {entry.name!r}, whose alias it is); give each "
                "model its own name (embedstack serve: --model-name, or 'name' in the models file)."
            )
    shared = Counter(alias for entry in named for alias in entry.aliases - {entry.name})
    ambiguous = {alias for alias, count in shared.items() if count > 1}
    if ambiguous:  # e.g. one folder served twice, on two backends: only the names tell them apart
        logger.warning("Aliases %s belong to several served models; requests must use their names.", sorted(ambiguous))
        named = [NamedModel(entry.name, entry.model, entry.aliases - ambiguous) for entry in named]
    return named


async def _api_error(request: Request, exc: Exception) -> Response:
    return error_response(exc, request.url.path)  # type: ignore[arg-type]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 400)
    if status == 404:
        message = f"There is no route {request.url.path!r}; see /docs for the API."
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path!r}; see /docs for the API."
    else:
        message = str(getattr(exc, "detail", exc))
    error = ApiError(status, message, {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error"))
    return error_response(error, request.url.path)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    error = ApiError(500, f"Unexpected server error ({type(exc).__name__}); the server log has details.", "internal")
    return error_response(error, request.url.path)
