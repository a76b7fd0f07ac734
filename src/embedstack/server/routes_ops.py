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


@router.get("/v1/models", response_class=JSONResponse, responses={200: {"model": ModelList}})
async def list_models(request: Request) -> Response:
    """The served model (OpenAI's models API)."""
    state = server_state(request)
    card = {"id": state.model_name, "object": "model", "created": state.created, "owned_by": "embedstack"}
    return JSONResponse({"object": "list", "data": [card]})


@router.get("/info", response_class=JSONResponse, responses={200: {"model": Info}})
async def info(request: Request) -> Response:
    """The served model: its name, its kind, the routes it answers, its width, limits.

    The width is the kind's: ``dimension`` (a SentenceTransformer), ``num_labels`` (a CrossEncoder), or
    ``vocab_size`` and ``max_active_dims`` (a SparseEncoder); the others are null.
    """
    state = server_state(request)
    service = state.service
    kind = service.kind
    sparse = kind == "SparseEncoder"
    content = {
        "model_id": state.model_name,
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
async def health(request: Request) -> Response:
    """200 while the model worker can serve; 503 with the reason when it is dead or stuck."""
    problem = server_state(request).service.problem()
    if problem is None:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unhealthy", "reason": problem}, status_code=503)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Requests, latency, queue depth, batch sizes, truncated and cancelled inputs, in Prometheus' format."""
    return Response(server_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)
