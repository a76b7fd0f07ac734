"""``GET /v1/models``, ``GET /info``, ``GET /health`` and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from embedstack._version import __version__
from embedstack.server.model_kind import ROUTES
from embedstack.server.responses import JSONResponse
from embedstack.server.schemas import Health, Info, ModelList
from embedstack.server.state import server_state

router = APIRouter()


# What each kind is for, as /v1/models says it.
KIND_LABEL = {"SentenceTransformer": "embedding", "CrossEncoder": "rerank", "SparseEncoder": "sparse"}


@router.get("/v1/models", response_class=JSONResponse, responses={200: {"model": ModelList}})
async def list_models(request: Request) -> Response:
    """The served models (OpenAI's models API), each with its kind and width."""
    state = server_state(request)
    cards = [
        {
            "id": entry.name, "object": "model", "created": state.created, "owned_by": "embedstack",
            "kind": KIND_LABEL[entry.kind], "model_kind": entry.kind, "dimensions": entry.service.dimension,
            "aliases": sorted(entry.aliases - {entry.name}), "backend": entry.service.model.get_backend(),
        }
        for entry in state.models.values()
    ]  # fmt: skip
    return JSONResponse({"object": "list", "data": cards})


@router.get("/info", response_class=JSONResponse, responses={200: {"model": Info}})
async def info(request: Request, model: str | None = None) -> Response:
    """A served model (``?model=NAME``; default: the first): its name, kind, routes, width and limits.

    The width is the kind's: ``dimension`` (a SentenceTransformer), ``num_labels`` (a CrossEncoder), or
    ``vocab_size`` and ``max_active_dims`` (a SparseEncoder); the others are null.
    """
    state = server_state(request)
    entry = state.entry(model)
    service = entry.service
    kind = entry.kind
    sparse = kind == "SparseEncoder"
    content = {
        "model_id": entry.name,
        "model_kind": kind,
        "routes": list(ROUTES[kind]),
        "dimension": service.dimension if kind == "SentenceTransformer" else None,
        "num_labels": service.dimension if kind == "CrossEncoder" else None,
        "vocab_size": service.dimension if sparse else None,
        "max_active_dims": getattr(service.model, "max_active_dims", None) if sparse else None,
        "max_input_length": service.model.max_seq_length,
        "max_client_batch_size": state.settings.max_inputs_per_request,
        "version": __version__,
    }
    return JSONResponse(content)


@router.get("/health", response_class=JSONResponse, responses={200: {"model": Health}, 503: {"model": Health}})
async def health(request: Request, model: str | None = None) -> Response:
    """200 while every served model (or the one of ``?model=NAME``) can serve; 503 with the reasons otherwise.

    A model whose worker died or is stuck makes the server unhealthy (a supervisor restarts it), while the other
    models go on answering their requests meanwhile.
    """
    state = server_state(request)
    entries = [state.entry(model)] if model is not None else list(state.models.values())
    problems = {entry.name: entry.service.problem() for entry in entries}
    statuses = {name: problem or "ok" for name, problem in problems.items()}
    bad = {name: problem for name, problem in problems.items() if problem is not None}
    if not bad:
        return JSONResponse({"status": "ok", "models": statuses})
    if len(entries) == 1:
        reason = next(iter(bad.values()))
    else:
        reason = " ".join(f"{name}: {problem}" for name, problem in bad.items())
    return JSONResponse({"status": "unhealthy", "reason": reason, "models": statuses}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Requests, latency, queue depth, batch sizes, truncated and cancelled inputs, in Prometheus' format."""
    return Response(server_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
