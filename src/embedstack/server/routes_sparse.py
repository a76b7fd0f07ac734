"""``POST /embed_sparse`` (text-embeddings-inference): a SparseEncoder's weights, non-zero ones only.

The inputs go through the same queue, limits and workers as the other routes; the workers keep the weights sparse
(the engine's "sparse_embedding" output after the model's ``max_active_dims``), so no (inputs, vocab) matrix is
built for a request. The answer equals ``model.encode`` of the same inputs: one list per input of
``{"index": token id, "value": weight}`` in ascending index order, as TEI answers.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from embedstack.server.read_request import disconnect_watch, input_list, read_json, validate
from embedstack.server.responses import TRUNCATED_HEADER, JSONResponse, sparse_values
from embedstack.server.schemas import EmbedSparseRequest, SparseValue, body_schema
from embedstack.server.state import server_state

router = APIRouter()


@router.post(
    "/embed_sparse",
    response_class=JSONResponse,
    openapi_extra=body_schema(EmbedSparseRequest),
    responses={200: {"model": list[list[SparseValue]]}},
    summary="Sparse (SPLADE) embeddings of inputs (text-embeddings-inference's API)",
)
async def embed_sparse(request: Request) -> Response:
    """POST /embed_sparse: ``[[{"index", "value"}, ...], ...]``, one list per input."""
    state = server_state(request)
    state.check_serves("SparseEncoder", request.url.path)
    body = validate(EmbedSparseRequest, await read_json(request, state.settings.max_payload_bytes))
    inputs = input_list(body.inputs, "inputs", state.settings)
    service = state.resolve(body.model, "SparseEncoder", request.url.path).service
    key = service.batch_key(body.prompt_name, body.input_type)
    async with disconnect_watch(request) as disconnected:
        result = await service.embed(inputs, key, truncate=body.truncate, disconnected=disconnected, field="inputs")
    content = [sparse_values(indices, values) for indices, values in result.vectors]
    return JSONResponse(content, headers={TRUNCATED_HEADER: str(result.truncated)})
