"""Reading a request: the body under a byte limit, JSON, the schema, the inputs under their limits.

Each failure is an :class:`ApiError` naming the field, the value or limit, and the fix; nothing a client
sends reaches the model unchecked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from embedstack.errors import close_matches
from embedstack.server.errors import ApiError
from embedstack.server.schemas import FIELD_SHAPES
from embedstack.server.settings import ServerSettings

RequestModel = TypeVar("RequestModel", bound=BaseModel)


async def read_json(request: Request, limit: int) -> Any:
    """The request body parsed as JSON, refusing bodies over ``limit`` bytes before reading them whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit, at_least=True)
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise ApiError(400, 'The request body is empty; send a JSON object such as {"input": "text"}.', "empty_body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise ApiError(
                400,
                f"The request body is not valid UTF-8 (byte 0x{body[bad.start]:02x} at offset {bad.start}); "
                "send JSON encoded as UTF-8.",
                "invalid_encoding",
            ) from None
        raise ApiError(400, f"The request body is not valid JSON ({exc}).", "invalid_json") from None


def _too_large(size: int, limit: int, at_least: bool = False) -> ApiError:
    amount = f"more than {limit:,}" if at_least else f"{size:,}"
    return ApiError(
        413,
        f"The request body is {amount} bytes, over the server's limit of {limit:,} bytes (max_payload_bytes). "
        "Send fewer or shorter inputs per request, or start the server with a larger --max-payload-bytes.",
        "payload_too_large",
    )


def validate(schema: type[RequestModel], body: Any) -> RequestModel:
    """``body`` as a ``schema`` request; the first problem becomes a 422 naming the field."""
    if not isinstance(body, dict):
        raise ApiError(422, f"The request body must be a JSON object, got a JSON {_kind(body)}.", "invalid_type")
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # An unknown field first: it is often the misspelling of the missing or wrong one.
        error = next((e for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1), errors[0])
        field = str(error["loc"][0]) if error["loc"] else "body"
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            hint = close_matches(field, schema.model_fields)
            message = f"Unknown field {field!r}.{hint} The fields are: {', '.join(schema.model_fields)}."
        elif error["type"] == "missing":
            message = f"The field {field!r} is required."
        elif field in FIELD_SHAPES:
            message = f"{field} must be {FIELD_SHAPES[field]}; got {_describe(body.get(field))}."
        else:
            message = f"{field}: {error['msg']} (got {_describe(error.get('input'))})."
        raise ApiError(422, message, error["type"], param=field) from None


def input_list(value: str | list[Any], field: str, settings: ServerSettings) -> list[str] | list[list[int]]:
    """The request's inputs as a list of texts or of token-id lists, checked against the limits."""
    if isinstance(value, str):
        inputs: list[Any] = [value]
    elif value and isinstance(value[0], int):
        inputs = [value]  # the token ids of one input
    else:
        inputs = list(value)
    if not inputs:
        raise ApiError(422, f"{field} is empty; send at least one text.", "empty_input", param=field)
    if len(inputs) > settings.max_inputs_per_request:
        raise ApiError(
            413,
            f"{field} has {len(inputs):,} items, over the server's limit of {settings.max_inputs_per_request:,} "
            "per request (max_inputs_per_request). Split them over several requests.",
            "too_many_inputs",
            param=field,
        )
    for index, item in enumerate(inputs):
        check_text(item, f"{field}[{index}]", field, settings)
    return inputs


def check_text(item: str | list[int], where: str, field: str, settings: ServerSettings) -> None:
    """422 for an empty input, 413 for a text over ``max_chars_per_input``; ``where`` names it, e.g. "input[3]"."""
    if not item:
        what = "an empty string" if isinstance(item, str) else "an empty list of token ids"
        raise ApiError(422, f"{where} is {what}; send at least one character.", "empty_input", field)
    if isinstance(item, str) and len(item) > settings.max_chars_per_input:
        raise ApiError(
            413,
            f"{where} has {len(item):,} characters, over the server's limit of {settings.max_chars_per_input:,} "
            "(max_chars_per_input). Split the text; the model reads only its first max_seq_length tokens anyway.",
            "input_too_large",
            param=field,
        )


@asynccontextmanager
async def disconnect_watch(request: Request) -> AsyncIterator[asyncio.Future]:
    """A future done when the client disconnects, watched while the block runs (enter after reading the body)."""
    disconnected = asyncio.ensure_future(watch_disconnect(request))
    try:
        yield disconnected
    finally:
        disconnected.cancel()


async def watch_disconnect(request: Request) -> None:
    """Return when the client disconnects (call after the body was read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
        await asyncio.sleep(0)


def _kind(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")


def _describe(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 60 else text[:57] + "..."
