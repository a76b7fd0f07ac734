"""``GET /v1/models``, ``GET /health`` and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from embedstack.server.responses import JSONResponse
from embedstack.server.schemas import Health, ModelList
from embedstack.server.state import server_state

router = APIRouter()


@router.get("/v1/models", response_class=JSONResponse, responses={200: {"model": ModelList}})
async def list_models(request: Request) -> Response:
    """The served model (OpenAI's models API)."""
    state = server_state(request)
    card = {"id": state.model_name, "object": "model", "created": state.created, "owned_by": "embedstack"}
    return JSONResponse({"object": "list", "data": [card]})


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
