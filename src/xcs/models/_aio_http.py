"""A small HTTP/1.1 client on asyncio's streams, for the local model's server.

``local:`` talks to llama.cpp's server on 127.0.0.1 with the standard library: the
sync path with ``http.client``, the async path (``xcs.models.acall`` / ``astream``)
with this, so an awaited request holds no thread, and cancelling the task closes
its socket at once. It speaks just what that server needs: one POST of a JSON body
per connection (``Connection: close``), a body framed by ``Content-Length``,
``Transfer-Encoding: chunked`` or the end of the connection. Not a general client:
the SDKs bring httpx for the providers on the internet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

__all__ = ["AsyncHTTPResponse", "post"]

# Longest status or header line accepted (asyncio's own stream limit is 64 KiB).
_LINE = 65536


class AsyncHTTPResponse:
    """The status, headers and body of one response. Not constructed by users.

    Every read is bounded by ``timeout`` seconds (as a socket timeout bounds each
    read of ``http.client``): ``TimeoutError`` past it. ``close()`` closes the
    connection; reading the body to its end does too.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        timeout: float,
    ) -> None:
        self.status = status
        self.headers = headers
        self._reader = reader
        self._writer = writer
        self._timeout = timeout

    async def read(self) -> bytes:
        """The whole body."""
        return b"".join([part async for part in self._body()])

    async def lines(self) -> AsyncIterator[bytes]:
        """The body's lines as they arrive, without their line ends (server-sent
        events are lines)."""
        pending = b""
        async for part in self._body():
            pending += part
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.rstrip(b"\r")
        if pending:
            yield pending.rstrip(b"\r")

    def close(self) -> None:
        self._writer.close()

    async def _body(self) -> AsyncIterator[bytes]:
        try:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size_line = await self._line()
                    size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        return
                    data = await self._io(self._reader.readexactly(size + 2))
                    yield data[:size]
            elif "content-length" in self.headers:
                length = int(self.headers["content-length"])
                if length:
                    yield await self._io(self._reader.readexactly(length))
            else:
                while data := await self._io(self._reader.read(_LINE)):
                    yield data
        finally:
            self.close()

    async def _line(self) -> bytes:
        line = await self._io(self._reader.readline())
        if not line.endswith(b"\n"):
            raise ConnectionError("the connection closed in the middle of a response")
        return line

    async def _io(self, read: Awaitable[bytes]) -> bytes:
        async with asyncio.timeout(self._timeout):
            return await read


async def post(
    host: str, port: int, path: str, body: bytes, *, timeout: float
) -> AsyncHTTPResponse:
    """POST a JSON ``body`` and return the response once its headers have arrived.

    Raises:
        TimeoutError: connecting or a read took longer than ``timeout``.
        OSError: the connection failed or broke (``ConnectionError``);
            ``asyncio.IncompleteReadError`` for a body cut short.
        ValueError: a malformed status line or header.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=_LINE)
    try:
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Content-Type: application/json\r\nAccept: */*\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode("ascii")
            + body
        )
        response = AsyncHTTPResponse(reader, writer, 0, {}, timeout)
        status_line = await response._line()
        parts = status_line.decode("latin-1").split(None, 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP status line: {status_line[:100]!r}")
        response.status = int(parts[1])
        while (line := await response._line()) not in (b"\r\n", b"\n"):
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ValueError(f"a malformed header line: {line[:100]!r}")
            response.headers[name.strip().lower()] = value.strip()
    except BaseException:
        writer.close()
        raise
    return response
