"""Bearer-token auth as ASGI middleware: every route needs the key except health, metrics and the docs."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from embedstack.server.errors import ApiError, error_response

OPEN_PATHS = frozenset({"/health", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class BearerAuth:
    """Answer 401 unless ``Authorization: Bearer <api_key>`` is sent (no-op when ``api_key`` is None).

    Args:
        app: The wrapped application.
        api_key: The key clients must send, or None for no auth.
    """

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on when it carries the key (or needs none); answer 401 otherwise."""
        if self.key is None or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            await self.app(scope, receive, send)
            return
        message = (
            "This server needs an API key: send the header 'Authorization: Bearer <key>'."
            if not header
            else "The API key in the Authorization header is not this server's; check the key you were given."
        )
        error = ApiError(401, message, "invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        await error_response(error, scope["path"])(scope, receive, send)
