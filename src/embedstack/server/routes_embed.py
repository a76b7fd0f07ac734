"""``POST /v1/embeddings`` (OpenAI) and ``POST /embed`` (text-embeddings-inference)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from embedstack.chunking import LongInputs
from embedstack.chunking.options import DEFAULT_OVERLAP
from embedstack.server.errors import ApiError
from embedstack.server.read_request import disconnect_watch, input_list, read_json, validate
from embedstack.server.responses import TRUNCATED_HEADER, JSONResponse, encode_base64, finish
from embedstack.server.schemas import EmbeddingRequest, EmbeddingResponse, EmbedRequest, body_schema
from embedstack.server.service import Embedded, EmbeddingService
from embedstack.server.state import ServerState, server_state

router = APIRouter()


@router.post(
    "/v1/embeddings",
    response_class=JSONResponse,
    openapi_extra=body_schema(EmbeddingRequest),
    responses={200: {"model": EmbeddingResponse}},
    summary="Embed inputs (OpenAI's embeddings API)",
)
async def create_embeddings(request: Request) -> Response:
    """POST /v1/embeddings: OpenAI-style request and response."""
    state = server_state(request)
    state.check_serves("SentenceTransformer", request.url.path)
    body = validate(EmbeddingRequest, await read_json(request, state.settings.max_payload_bytes))
    entry = state.resolve(body.model, "SentenceTransformer", request.url.path)
    result = await _run(request, state, entry.service, body, body.input, "input")
    renormalize = body.dimensions is not None and entry.service.normalized
    vectors = finish(result.vectors, dimensions=body.dimensions, normalize=renormalize)
    items = [encode_base64(row) for row in vectors] if body.encoding_format == "base64" else list(vectors)
    content = {
        "object": "list",
        "data": [{"object": "embedding", "index": index, "embedding": item} for index, item in enumerate(items)],
        "model": body.model or entry.name,
        "usage": {"prompt_tokens": result.tokens, "total_tokens": result.tokens, "truncated_inputs": result.truncated},
    }
    return JSONResponse(content, headers={TRUNCATED_HEADER: str(result.truncated)})


@router.post(
    "/embed",
    response_class=JSONResponse,
    openapi_extra=body_schema(EmbedRequest),
    responses={200: {"model": list[list[float]]}},
    summary="Embed inputs (text-embeddings-inference's API)",
)
async def embed(request: Request) -> Response:
    """POST /embed: text-embeddings-inference-style request and response."""
    state = server_state(request)
    state.check_serves("SentenceTransformer", request.url.path)
    body = validate(EmbedRequest, await read_json(request, state.settings.max_payload_bytes))
    service = state.resolve(body.model, "SentenceTransformer", request.url.path).service
    result = await _run(request, state, service, body, body.inputs, "inputs")
    vectors = finish(result.vectors, dimensions=body.dimensions, normalize=body.normalize)
    return JSONResponse(vectors, headers={TRUNCATED_HEADER: str(result.truncated)})


async def _run(
    request: Request,
    state: ServerState,
    service: EmbeddingService,
    body: EmbeddingRequest | EmbedRequest,
    value: Any,
    field: str,
) -> Embedded:
    inputs = input_list(value, field, state.settings)
    if body.dimensions is not None and not 1 <= body.dimensions <= service.dimension:
        raise ApiError(
            422, f"dimensions must be between 1 and the model's {service.dimension}, got {body.dimensions}.",
            "invalid_dimensions", "dimensions",
        )  # fmt: skip
    key = service.batch_key(body.prompt_name, body.input_type)
    try:
        long_inputs = LongInputs(
            body.long_inputs, overlap=DEFAULT_OVERLAP if body.chunk_overlap is None else body.chunk_overlap,
            pooling=body.chunk_pooling or "mean",
        )  # fmt: skip
    except ValueError as exc:
        raise ApiError(422, str(exc), "invalid_long_inputs", "chunk_overlap") from exc
    async with disconnect_watch(request) as disconnected:
        return await service.embed(
            inputs, key, truncate=body.truncate, disconnected=disconnected, field=field, long_inputs=long_inputs
        )
