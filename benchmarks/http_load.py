"""A lean HTTP/1.1 load generator client: keep-alive connections over asyncio streams, handed out by a queue.

The load generator runs on the same cores as the server it measures, so what it costs is taken from the server.
httpx's pool (httpcore) goes over its waiting requests whenever a connection frees, so a request costs more the more
of them wait: in an open loop that falls behind (requests sent on a schedule pile up), the client took most of a core
and the server starved (all-MiniLM-L6-v2 offered 80% of its capacity: 91 texts/s served instead of 190, the client
at 0.76 cores, 0.4 cores idle; with this client: 213 texts/s, the client at 0.05 cores). Here a request waits for a
connection in an ``asyncio.LifoQueue`` (constant cost however many wait) and is written and read with no
per-request objects beyond the bytes. In a closed loop, where nothing piles up, httpx still cost
0.34-0.43 cores at 32 clients x 1 short text against this client's 0.02 (``server_throughput.py --client``).

    async with Connections("127.0.0.1", 8890, size=32) as http:
        status, body = await http.post("/v1/embeddings", {"input": ["a text"], "model": "m"})
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a load generator's coroutine on uvloop when installed (the server's extra brings it): it costs less."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


class Connections:
    """``size`` keep-alive connections to one server; each request takes a free one (waiting in arrival order).

    Args:
        host: The server's address.
        port: Its port.
        size: Connections (the most requests in flight at once).
    """

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        # Last in, first out: the most recently used connection goes next, so the others may idle out (the server
        # closes a keep-alive connection after seconds unused) while a fresh one is opened when the load needs it.
        self._free: asyncio.LifoQueue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.LifoQueue()

    async def __aenter__(self) -> Connections:
        for _ in range(self.size):
            self._free.put_nowait(None)  # opened on first use: unopened slots sit under the open connections
        return self

    async def __aexit__(self, *exc: object) -> None:
        while not self._free.empty():
            connection = self._free.get_nowait()
            if connection is not None:
                connection[1].close()

    async def post(self, path: str, payload: Any) -> tuple[int, bytes]:
        """POST ``payload`` as JSON; (status, body).

        A kept-alive connection the server closed before answering (it closes idle ones after a few seconds) is
        replaced and the request sent once more: the server read none of it. Any other failure raises
        (``ConnectionError`` when the line drops mid-answer, ``ValueError`` for a response this client cannot read).
        """
        body = json.dumps(payload).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        connection = await self._free.get()
        try:
            if connection is not None and connection[0].at_eof():  # the server closed it while it idled
                connection[1].close()
                connection = None
            reused = connection is not None
            if connection is None:
                connection = await asyncio.open_connection(self.host, self.port)
            try:
                status, answer, keep = await _exchange(connection, request)
            except _ClosedBeforeAnswer:
                if not reused:
                    raise
                connection[1].close()
                connection = await asyncio.open_connection(self.host, self.port)
                status, answer, keep = await _exchange(connection, request)
        except BaseException:
            if connection is not None:
                connection[1].close()
            self._free.put_nowait(None)  # a fresh connection next time
            raise
        if keep:
            self._free.put_nowait(connection)
        else:
            connection[1].close()
            self._free.put_nowait(None)
        return status, answer


class _ClosedBeforeAnswer(ConnectionError):
    """The server closed the connection before the first byte of its answer."""


async def _exchange(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[int, bytes, bool]:
    """Send ``request`` and read the answer: (status, body, whether the connection stays open)."""
    reader, writer = connection
    try:
        writer.write(request)
        await writer.drain()
    except ConnectionError as exc:
        raise _ClosedBeforeAnswer("the server closed the connection") from exc
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _ClosedBeforeAnswer("the server closed the connection") from exc
        raise ConnectionError("the server closed the connection mid-answer") from exc
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get("connection") != "close"
    try:
        body, keep = await _body(reader, headers, keep)
    except asyncio.IncompleteReadError as exc:
        raise ConnectionError("the server closed the connection mid-answer") from exc
    return status, body, keep


async def _body(reader: asyncio.StreamReader, headers: dict[str, str], keep: bool) -> tuple[bytes, bool]:
    """The answer's body (chunked, sized, or up to the connection's end) and whether the connection stays open."""
    if "chunked" in headers.get("transfer-encoding", ""):  # wins over a content-length (RFC 9112)
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16):  # chunk extensions
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, up to the empty line
            pass
        return b"".join(parts), keep
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"])), keep
    return await reader.read(), False  # delimited by the server closing the connection
