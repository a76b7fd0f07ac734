"""Errors a client sees: one exception type, rendered as JSON in the shape of the route's API.

The OpenAI routes (``/v1/...``) answer ``{"error": {"message", "type", "code", "param"}}`` as OpenAI does;
the others answer TEI's ``{"error": message, "error_type": type}``. Every message says what was wrong, with
the value and the limit, and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


@dataclass
class ApiError(Exception):
    """A request the server answers with a 4xx or 5xx status and a JSON error body.

    Attributes:
        status: The HTTP status.
        message: What happened, why, and how to fix it.
        code: A short machine-readable reason, e.g. ``"queue_full"``.
        param: The request field at fault, if one is.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    status: int
    message: str
    code: str
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def error_response(error: ApiError, path: str) -> Response:
    """``error`` as a JSON response in the shape of the API that ``path`` belongs to."""
    kind = _TYPES.get(error.status, "invalid_request_error" if error.status < 500 else "server_error")
    body: dict[str, Any]
    if path.startswith("/v1/"):
        body = {"error": {"message": error.message, "type": kind, "code": error.code, "param": error.param}}
    else:
        body = {"error": error.message, "error_type": error.code}
    return Response(orjson.dumps(body), error.status, headers=error.headers, media_type="application/json")
