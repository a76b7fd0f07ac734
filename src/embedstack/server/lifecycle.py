"""Running the server: in the foreground with graceful SIGTERM (the CLI), or on a background thread (tests).

On SIGTERM or SIGINT the server stops accepting connections, answers every request it holds (queued ones
included), stops the model worker and returns, so ``embedstack serve`` exits 0.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from embedstack.server.app import NamedModel, create_app
from embedstack.server.model_kind import ServedModel
from embedstack.server.settings import ServerSettings
from embedstack.server.state import ServerState

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """Uvicorn's server, returning after a graceful shutdown on a signal.

    It does not re-raise the signal (which would end the process with status 143), and reports its address once
    it accepts connections.
    """

    def __init__(self, config: uvicorn.Config, ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._ready = ready

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._ready is not None:
            self._ready()


def _config(app: FastAPI, settings: ServerSettings, log_level: str) -> tuple[uvicorn.Config, socket.socket, str]:
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level, access_log=False, lifespan="on"
    )
    sock = _listen(settings.host, settings.port)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return config, sock, f"http://{host}:{sock.getsockname()[1]}"


def _listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket (port 0: a free one).

    It is made with proto=IPPROTO_TCP because asyncio sets TCP_NODELAY only on such sockets; without it, Nagle's
    algorithm and delayed ACKs add 40 ms to every answer sent in two writes (headers, then body).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"Cannot listen on {host}:{port} ({exc.strerror}); pick another --port or --host.") from exc
    sock.set_inheritable(True)
    return sock


def serve(
    model: ServedModel | Sequence[NamedModel],
    settings: ServerSettings | None = None,
    *,
    aliases: Iterable[str] = (),
    ready: Callable[[str], None] | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``model`` until SIGTERM or SIGINT, then finish the requests in flight and return.

    Args:
        model: The model to serve, or several (:class:`~embedstack.server.app.NamedModel`).
        settings: Address, limits and auth (default: ``ServerSettings.from_env()``).
        aliases: Other names a request's ``model`` field may use.
        ready: Called with the server's URL once it accepts connections.
        log_level: uvicorn's log level.
    """
    settings = settings or ServerSettings.from_env()
    config, sock, url = _config(create_app(model, settings, aliases=aliases), settings, log_level)
    _Server(config, ready=(lambda: ready(url)) if ready else None).run(sockets=[sock])


@dataclass
class RunningServer:
    """A server running on a background thread of this process; stop it with :meth:`stop` or ``with``."""

    url: str
    app: FastAPI
    _server: _Server
    _thread: threading.Thread

    @property
    def state(self) -> ServerState:
        """The server's settings, service (queue, worker) and metrics."""
        return self.app.state.embedstack

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down gracefully (requests in flight are answered) and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"The server at {self.url} did not stop within {timeout} s.")

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(
    model: ServedModel | Sequence[NamedModel],
    settings: ServerSettings | None = None,
    *,
    aliases: Iterable[str] = (),
    timeout: float = 60.0,
) -> RunningServer:
    """Start a server for ``model`` on a background thread and return once it accepts connections.

    Args:
        model: The model to serve, or several (:class:`~embedstack.server.app.NamedModel`).
        settings: Address, limits and auth (default: loopback, a free port).
        aliases: Other names a request's ``model`` field may use.
        timeout: Seconds to wait for the server to start.

    Example:
        >>> import httpx
        >>> with start_server(model) as server:
        ...     len(httpx.post(f"{server.url}/embed", json={"inputs": "hello"}).json()[0])
        384
    """
    settings = settings or ServerSettings(port=0)
    app = create_app(model, settings, aliases=aliases)
    config, sock, url = _config(app, settings, "warning")
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="embedstack-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"The server for {url} did not start (see the log above).")
        time.sleep(0.01)
    return RunningServer(url, app, server, thread)
