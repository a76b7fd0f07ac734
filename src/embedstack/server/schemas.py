"""Request and response bodies of the HTTP API, as pydantic models (validation and the OpenAPI page).

Requests are strict: wrong types are not coerced (``"3"`` is not a number) and unknown fields are refused,
so a misspelt option is an error instead of being silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

StrictInt = Annotated[int, Strict()]
StrictStr = Annotated[str, Strict()]
StrictBool = Annotated[bool, Strict()]
# A string, a list of strings, token ids of one input, or token ids of several inputs.
Inputs = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
INPUT_SHAPES = "a string, a list of strings, a list of token ids, or a list of lists of token ids"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_name: StrictStr | None = Field(None, description="A prompt saved with the model, e.g. 'query'.")
    input_type: Literal["query", "document"] | None = Field(
        None, description="'query' or 'document': the model's prompt for that side (as encode_query/document)."
    )
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
    normalize: StrictBool = Field(True, description="L2-normalize the vectors.")
    truncation_direction: Literal["right", "Right"] = Field("right", description="Only 'right' is supported.")


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


class ModelCard(BaseModel):
    """One served model, as /v1/models lists it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """The response of /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    """The response of /health."""

    status: Literal["ok", "unhealthy"]
    reason: str | None = None
