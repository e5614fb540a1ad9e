"""``spead2.tools.live._http``: the live view's own HTTP server, and ``spead2_recv --http-port``.

The server is spoken to with raw HTTP over loopback, including requests a
browser would never send (other methods, broken request lines, heads that
are too long or never finish): each gets an answer or a closed connection,
and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

import spead2
import spead2.send
from spead2.tools.live import LiveView
from spead2.tools.live import _http as http
from tests.helpers.tools import env, free_port, tool_command
from tests.helpers.waiting import wait_for


@pytest.fixture
async def server() -> AsyncIterator[tuple[LiveView, int]]:
    live = LiveView(title="test")
    server = await http.serve(live, "127.0.0.1", 0)
    try:
        yield live, server.sockets[0].getsockname()[1]
    finally:
        live.close()
        server.close()
        await asyncio.wait_for(server.wait_closed(), 10)


async def request(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw``; the status, headers and body of the answer (read to the end)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


async def test_routes(server: tuple[LiveView, int]) -> None:
    live, port = server
    status, headers, body = await request(port, get("/"))
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"<title>test" in body and int(headers["Content-Length"]) == len(body)
    status, headers, body = await request(port, get("/static/live.js"))
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, _, body = await request(port, get("/api/stats"))
    assert status == 200 and json.loads(body)["heaps"] == 0
    for path in ("/api/items/x", "/api/items/x?format=npy", "/static/../__init__.py", "/nope"):
        assert (await request(port, get(path)))[0] == 404, path
    status, headers, body = await request(port, get("/api/stats", "HEAD"))
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


async def test_full_item_with_a_quoted_name(server: tuple[LiveView, int]) -> None:
    live, port = server
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "a b/c", "", (3,), dtype=np.int32)
    group["a b/c"].value = np.array([1, 2, 3], np.int32)
    data = b"".join(bytes(p) for p in spead2.send.PacketGenerator(group.get_heap(), 1, 9000))
    stream = spead2.recv.Stream(spead2.ThreadPool())
    stream.add_buffer_reader(data)
    for heap in stream:
        live.add_heap(heap)
    status, _, body = await request(port, get("/api/items/a%20b%2Fc"))
    assert status == 200 and json.loads(body)["value"] == [1, 2, 3]


async def test_events_stream_until_closed(server: tuple[LiveView, int]) -> None:
    live, port = server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(get("/api/events"))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert b"200 OK" in head and b"Content-Type: text/event-stream" in head
    snapshot = await asyncio.wait_for(reader.readuntil(b"}\n\n"), 10)
    assert snapshot.startswith(b"retry: 2000\n\nevent: snapshot\n")
    live.sample()
    assert (await asyncio.wait_for(reader.readuntil(b"}\n\n"), 10)).startswith(b"event: update")
    live.close()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # the server ends the stream
    writer.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [(b"POST / HTTP/1.1\r\n\r\n", 405), (b"GET /\r\n\r\n", 400), (b"\r\n\r\n", 400),
     (b"GET / SPDY/3\r\n\r\n", 400)],
)
async def test_bad_requests_are_answered(server: tuple[LiveView, int], raw: bytes, status: int) -> None:
    _, port = server
    answer, headers, _ = await request(port, raw)
    assert answer == status
    if status == 405:
        assert headers["Allow"] == "GET, HEAD"


async def test_hostile_heads_are_dropped_and_serving_goes_on(
    server: tuple[LiveView, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, port = server
    too_long = b"GET /" + b"a" * (http.MAX_HEAD + 10) + b" HTTP/1.1\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(too_long)
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing allocated for it
    writer.close()
    # A client that never finishes its head is dropped after HEAD_TIMEOUT.
    monkeypatch.setattr(http, "HEAD_TIMEOUT", 0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\n")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    assert (await request(port, get("/api/stats")))[0] == 200


def test_spead2_recv_serves_the_live_view() -> None:
    spead_port = free_port()
    proc = subprocess.Popen(
        tool_command("recv", "--http-port", "0", f"127.0.0.1:{spead_port}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 30
        while "Live view on" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "spead2_recv exited"
        match = re.search(r"Live view on http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        http_port = int(match[1])
        group = spead2.send.ItemGroup()
        group.add_item(0x1000, "power", "Total power", (), dtype=np.float64)
        group["power"].value = 2.5
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for packet in spead2.send.PacketGenerator(group.get_heap(), 1, 9000):
                sock.sendto(packet, ("127.0.0.1", spead_port))

            def items_once_power_arrived() -> dict:
                with socket.create_connection(("127.0.0.1", http_port), timeout=10) as conn:
                    conn.sendall(get("/api/items"))
                    data = b""
                    while chunk := conn.recv(65536):
                        data += chunk
                items = json.loads(data.partition(b"\r\n\r\n")[2])
                return items if "power" in items else {}

            stats = wait_for(items_once_power_arrived, "the heap on /api/items")
            assert stats["power"]["value"] == 2.5
            for packet in spead2.send.PacketGenerator(group.get_end(), 2, 9000):
                sock.sendto(packet, ("127.0.0.1", spead_port))
        # The tool still prints what it receives, and ends with the stream as always.
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "Received heap 1 on stream" in out and "power" in out
        assert "Shutting down stream" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
