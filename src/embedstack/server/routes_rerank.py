"""``POST /rerank`` (text-embeddings-inference) and ``POST /v1/rerank`` (Cohere's and Jina's API).

Both score (query, text) pairs with the served CrossEncoder through the same queue, limits and workers as the
embedding routes, and answer the texts best first (equal scores keep the texts' order, as ``CrossEncoder.rank``).
Scores are ``model.predict`` of the pairs: the model's activation applied (sigmoid for one label), or the raw
logits with ``raw_scores: true``.
"""

from __future__ import annotations

import uuid

import numpy as np
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from embedstack.server.read_request import check_text, disconnect_watch, input_list, read_json, validate
from embedstack.server.responses import TRUNCATED_HEADER, JSONResponse
from embedstack.server.schemas import CohereRerankRequest, RankedText, RerankRequest, RerankResponse, body_schema
from embedstack.server.service import Embedded, EmbeddingService
from embedstack.server.state import ServerState, server_state

router = APIRouter()


@router.post(
    "/rerank",
    response_class=JSONResponse,
    openapi_extra=body_schema(RerankRequest),
    responses={200: {"model": list[RankedText]}},
    summary="Rerank texts against a query (text-embeddings-inference's API)",
)
async def rerank(request: Request) -> Response:
    """POST /rerank: ``[{"index", "score", "text"?}, ...]``, best first."""
    state = server_state(request)
    state.check_serves("CrossEncoder", request.url.path)
    body = validate(RerankRequest, await read_json(request, state.settings.max_payload_bytes))
    service = state.resolve(body.model, "CrossEncoder", request.url.path).service
    result = await _score(request, state, service, body.query, body.texts, "texts", body.raw_scores, body.truncate)
    ranked = []
    for index in _best_first(result.vectors):
        item = {"index": int(index), "score": float(result.vectors[index])}
        if body.return_text:
            item["text"] = body.texts[index]
        ranked.append(item)
    return JSONResponse(ranked, headers={TRUNCATED_HEADER: str(result.truncated)})


@router.post(
    "/v1/rerank",
    response_class=JSONResponse,
    openapi_extra=body_schema(CohereRerankRequest),
    responses={200: {"model": RerankResponse}},
    summary="Rerank documents against a query (Cohere's and Jina's rerank API)",
)
async def rerank_documents(request: Request) -> Response:
    """POST /v1/rerank: ``{"id", "results": [{"index", "relevance_score", "document"?}], "model", "usage"}``."""
    state = server_state(request)
    state.check_serves("CrossEncoder", request.url.path)
    body = validate(CohereRerankRequest, await read_json(request, state.settings.max_payload_bytes))
    entry = state.resolve(body.model, "CrossEncoder", request.url.path)
    texts = [document if isinstance(document, str) else document.text for document in body.documents]
    result = await _score(request, state, entry.service, body.query, texts, "documents", body.raw_scores, body.truncate)
    results = []
    for index in _best_first(result.vectors)[: body.top_n]:
        item: dict[str, object] = {"index": int(index), "relevance_score": float(result.vectors[index])}
        if body.return_documents:
            item["document"] = {"text": texts[index]}
        results.append(item)
    usage = {"prompt_tokens": result.tokens, "total_tokens": result.tokens, "truncated_inputs": result.truncated}
    content = {"id": str(uuid.uuid4()), "results": results, "model": body.model or entry.name, "usage": usage}
    return JSONResponse(content, headers={TRUNCATED_HEADER: str(result.truncated)})


async def _score(
    request: Request,
    state: ServerState,
    service: EmbeddingService,
    query: str,
    texts: list[str],
    field: str,
    raw: bool,
    truncate: bool,
) -> Embedded:
    """Scores of ``(query, text)`` for each text, after the same limits as embedding inputs (``field``: texts)."""
    check_text(query, "query", "query", state.settings)
    input_list(texts, field, state.settings)
    async with disconnect_watch(request) as disconnected:
        return await service.score(query, texts, raw=raw, truncate=truncate, disconnected=disconnected, field=field)


def _best_first(scores: np.ndarray) -> np.ndarray:
    """Indices of ``scores`` from highest to lowest; equal scores keep their order."""
    return np.argsort(-scores, kind="stable")
