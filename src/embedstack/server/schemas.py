"""Request and response bodies of the HTTP API, as pydantic models (validation and the OpenAPI page).

Requests are strict: wrong types are not coerced (``"3"`` is not a number) and unknown fields are refused,
so a misspelt option is an error instead of being silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

StrictInt = Annotated[int, Strict()]
StrictStr = Annotated[str, Strict()]
StrictBool = Annotated[bool, Strict()]
# A string, a list of strings, token ids of one input, or token ids of several inputs.
Inputs = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
INPUT_SHAPES = "a string, a list of strings, a list of token ids, or a list of lists of token ids"
# The shape each list field must have, for the 422 that names it (other fields get pydantic's message).
FIELD_SHAPES = {
    "input": INPUT_SHAPES,
    "inputs": INPUT_SHAPES,
    "texts": "a list of strings",
    "documents": 'a list of strings or of {"text": string} objects',
}


def _served_model() -> Any:
    """The ``model`` field of the TEI-style requests, which may leave it out."""
    return Field(
        None, description="Which served model (see GET /v1/models); default: the first one of this route's kind."
    )


class _Prompted(BaseModel):
    """The options every embedding request shares: which of the model's prompts (and task) its inputs get."""

    model_config = ConfigDict(extra="forbid")

    prompt_name: StrictStr | None = Field(None, description="A prompt saved with the model, e.g. 'query'.")
    input_type: Literal["query", "document"] | None = Field(
        None, description="'query' or 'document': the model's prompt for that side (as encode_query/document)."
    )


class _Request(_Prompted):
    dimensions: StrictInt | None = Field(
        None, description="Keep the first N dimensions (Matryoshka); re-normalized when the model normalizes."
    )
    truncate: StrictBool = Field(
        True, description="Cut inputs longer than the model's window (counted in the response); false: 422."
    )
    long_inputs: Literal["truncate", "pool", "chunk"] = Field(
        "truncate",
        description="Texts longer than the model's window: 'truncate' (see truncate) or 'pool' (overlapping "
        "token windows, each embedded, pooled into one vector per input, as encode(long_inputs='pool')); "
        "'chunk' is the deprecated name of 'pool'.",
    )
    chunk_overlap: StrictInt | None = Field(None, description="'pool': tokens two neighbouring windows share.")
    chunk_pooling: Literal["mean", "max"] | None = Field(
        None, description="'pool': 'mean' of the windows weighted by their tokens (default), or 'max'."
    )


class EmbeddingRequest(_Request):
    """``POST /v1/embeddings``: OpenAI's embeddings request, plus embedstack's prompt and truncation options."""

    input: Inputs = Field(description=f"What to embed: {INPUT_SHAPES} (this model's tokenizer).")
    model: StrictStr | None = Field(None, description="The served model's name (see GET /v1/models).")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="'float' lists, or 'base64' of little-endian float32 bytes."
    )
    user: StrictStr | None = Field(None, description="Accepted for compatibility; not used.")


class EmbedRequest(_Request):
    """``POST /embed``: text-embeddings-inference's request."""

    inputs: Inputs = Field(description=f"What to embed: {INPUT_SHAPES}.")
    model: StrictStr | None = _served_model()
    normalize: StrictBool = Field(True, description="L2-normalize the vectors.")
    truncation_direction: Literal["right", "Right"] = Field("right", description="Only 'right' is supported.")


class EmbedSparseRequest(_Prompted):
    """``POST /embed_sparse``: text-embeddings-inference's sparse request, plus embedstack's ``input_type``."""

    inputs: Inputs = Field(description=f"What to embed: {INPUT_SHAPES}.")
    model: StrictStr | None = _served_model()
    truncate: StrictBool = Field(
        True, description="Cut inputs longer than the model's window (counted in a header); false: 422."
    )
    truncation_direction: Literal["right", "Right"] = Field("right", description="Only 'right' is supported.")


class SparseValue(BaseModel):
    """One non-zero weight of a sparse embedding: the token id (vocabulary index) and its weight."""

    index: int
    value: float


class EmbeddingData(BaseModel):
    """One vector of an OpenAI-style response."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    """Token counts of an OpenAI-style response."""

    prompt_tokens: int
    total_tokens: int
    truncated_inputs: int = Field(description="Inputs cut to the model's window (embedstack's addition).")


class EmbeddingResponse(BaseModel):
    """The OpenAI-style response of /v1/embeddings."""

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage


class RerankRequest(BaseModel):
    """``POST /rerank``: text-embeddings-inference's rerank request."""

    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(description="What the texts are ranked against.")
    texts: list[StrictStr] = Field(description="The texts to rank.")
    model: StrictStr | None = _served_model()
    raw_scores: StrictBool = Field(False, description="The model's logits, without its activation (e.g. sigmoid).")
    return_text: StrictBool = Field(False, description="Add each text to its result.")
    truncate: StrictBool = Field(
        True, description="Cut (query, text) pairs longer than the model's window (counted in a header); false: 422."
    )
    truncation_direction: Literal["right", "Right"] = Field("right", description="Only 'right' is supported.")


class RerankDocument(BaseModel):
    """A document as an object (Cohere's v1 and Jina's form)."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr


class CohereRerankRequest(BaseModel):
    """``POST /v1/rerank``: Cohere's and Jina's rerank request, plus embedstack's truncation and raw scores."""

    model_config = ConfigDict(extra="forbid")

    query: StrictStr = Field(description="What the documents are ranked against.")
    documents: list[StrictStr | RerankDocument] = Field(description='The documents: strings or {"text": string}.')
    model: StrictStr | None = Field(None, description="The served model's name (see GET /v1/models).")
    top_n: Annotated[int, Strict(), Field(ge=1)] | None = Field(None, description="Return the N best (default: all).")
    return_documents: StrictBool = Field(False, description='Add each document, as {"text": ...}, to its result.')
    raw_scores: StrictBool = Field(False, description="The model's logits, without its activation (e.g. sigmoid).")
    truncate: StrictBool = Field(
        True, description="Cut (query, document) pairs longer than the model's window; false: 422."
    )


class RankedText(BaseModel):
    """One result of /rerank, best first."""

    index: int
    score: float
    text: str | None = None


class RerankResult(BaseModel):
    """One result of /v1/rerank, best first."""

    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankResponse(BaseModel):
    """The Cohere/Jina-style response of /v1/rerank."""

    id: str
    results: list[RerankResult]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    """One served model, as /v1/models lists it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    kind: Literal["embedding", "rerank", "sparse"] = Field(description="What the model is for (its routes: /info).")
    model_kind: Literal["SentenceTransformer", "CrossEncoder", "SparseEncoder"]
    dimensions: int = Field(description="Embedding width, scores per pair (a reranker) or vocabulary (sparse).")
    aliases: list[str] = Field(description="Other names a request's model field may use for it.")
    backend: str = Field(description="What runs it: torch, native or onnx (backend='auto' measured the fastest).")


class ModelList(BaseModel):
    """The response of /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Info(BaseModel):
    """The response of /info: the served model, its kind and the routes that serve it, and the limits."""

    model_id: str
    model_kind: Literal["SentenceTransformer", "CrossEncoder", "SparseEncoder"]
    routes: list[str] = Field(description="The POST routes this model answers (the other kinds' answer 400).")
    dimension: int | None = Field(description="Embedding width (a SentenceTransformer), else null.")
    num_labels: int | None = Field(description="Scores per pair (a CrossEncoder), else null.")
    vocab_size: int | None = Field(description="Width of a sparse embedding: the vocabulary (a SparseEncoder).")
    max_active_dims: int | None = Field(
        description="Non-zero weights kept per sparse embedding at most (a SparseEncoder's; null: all)."
    )
    max_input_length: int | None = Field(description="Tokens per input (per pair) the model reads; longer are cut.")
    max_client_batch_size: int = Field(description="Inputs per request (max_inputs_per_request).")
    version: str


class Health(BaseModel):
    """The response of /health: the server's status (unhealthy when any served model is) and each model's."""

    status: Literal["ok", "unhealthy"]
    reason: str | None = None
    models: dict[str, str] = Field(description='Each served model\'s status: "ok", or why it cannot serve.')


def body_schema(schema: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its JSON itself (to validate it with its own errors).

    Nested models are inlined: the schema's own ``#/$defs/...`` references mean nothing inside the OpenAPI page.
    """
    spec = schema.model_json_schema()
    content = {"application/json": {"schema": _inline(spec, spec.pop("$defs", {}))}}
    return {"requestBody": {"required": True, "content": content}}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node
