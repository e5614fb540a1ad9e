"""A small HTTP/1.1 server for the live view, on asyncio streams (no web framework needed).

It serves the routes listed in :mod:`spead2.tools.live` and nothing else:
``GET`` (and ``HEAD``) only, one request per connection, a request head of at
most :data:`MAX_HEAD` bytes read within :data:`HEAD_TIMEOUT` seconds. It is
what ``spead2_recv --http-port`` runs; services built on a web framework
serve the same routes with it instead (see ``examples/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from http import HTTPStatus
from typing import Any

from . import LiveView, static_file

__all__ = ["serve", "MAX_HEAD", "HEAD_TIMEOUT"]

#: Longest request line plus headers accepted, in bytes.
MAX_HEAD = 16384
#: Seconds a client has to send its request head.
HEAD_TIMEOUT = 10.0


def _head(status: int, content_type: str, length: int | None = None, extra: str = "") -> bytes:
    reason = HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
             "Cache-Control: no-cache", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(value).encode()


def _error(status: int, text: str) -> tuple[int, str, bytes]:
    return status, "text/plain; charset=utf-8", (text + "\n").encode()


def route(live: LiveView, path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
    """``(status, content type, body)`` for one of the routes that are not event streams."""
    if path == "/":
        return 200, "text/html; charset=utf-8", live.page().encode()
    if path.startswith("/static/"):
        found = static_file(path[len("/static/"):])
        if found is None:
            return _error(404, "no such file")
        return 200, found[1] + "; charset=utf-8", found[0]
    if path == "/api/stats":
        return _json(live.stats())
    if path == "/api/items":
        return _json(live.items())
    if path.startswith("/api/items/"):
        name = path[len("/api/items/"):]
        if query.get("format") == ["npy"]:
            data = live.item_npy(name)
            if data is None:
                return _error(404, f"no array item named {name!r}")
            return 200, "application/octet-stream", data
        value = live.item(name)
        if value is None:
            return _error(404, f"no item named {name!r}")
        return _json(value)
    return _error(404, "not found")


async def _handle(live: LiveView, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            return  # nothing sensible to answer: a half request, too long or too slow
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            status, content_type, body = _error(400, "bad request line")
        elif parts[0] not in ("GET", "HEAD"):
            status, content_type, body = _error(405, f"method {parts[0]} not allowed")
        else:
            target = urllib.parse.urlsplit(parts[1])
            path = urllib.parse.unquote(target.path)
            if path == "/api/events" and parts[0] == "GET":
                await _events(live, writer)
                return
            status, content_type, body = route(live, path, urllib.parse.parse_qs(target.query))
        extra = "Allow: GET, HEAD" if status == 405 else ""
        writer.write(_head(status, content_type, len(body), extra))
        if parts[0] != "HEAD":
            writer.write(body)
        await writer.drain()
    except ConnectionError:
        pass  # the client went away
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _events(live: LiveView, writer: asyncio.StreamWriter) -> None:
    writer.write(_head(200, "text/event-stream"))
    async with contextlib.aclosing(live.events()) as events:
        async for event in events:
            writer.write(event.encode())
            await writer.drain()


async def serve(live: LiveView, host: str, port: int) -> asyncio.Server:
    """Serve ``live`` on ``host:port`` (0: a free port) until the server is closed.

    Call ``live.close()`` before waiting for the server to close: that ends
    the event streams browsers hold open.
    """
    return await asyncio.start_server(
        lambda reader, writer: _handle(live, reader, writer), host, port, limit=MAX_HEAD
    )
