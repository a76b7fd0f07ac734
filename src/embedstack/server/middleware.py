"""Request metrics as ASGI middleware: count by route and status, time every request, track in-flight ones.

Plain ASGI (not Starlette's BaseHTTPMiddleware), so a route still sees its client disconnect.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedstack.server.metrics import Metrics


class RequestMetrics:
    """Record each HTTP request in ``metrics``; paths that are not routes count as "other" (bounded labels).

    Args:
        app: The wrapped application.
        metrics: The server's metrics.
        routes: The paths counted under their own name.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting it by route and status and timing it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
