"""The web examples (``examples/web_service.py``: aiohttp, ``examples/fastapi_service.py``:
FastAPI) answer real HTTP requests while a sender feeds them.

Each application is served on a free loopback port in this test's event loop
(aiohttp's runner; uvicorn for FastAPI, with its lifespan), and heaps come
over loopback UDP from a ``spead2.send.asyncio`` stream. Both must serve the
same endpoints with the same answers. Polls are bounded (``POLL_LIMIT``
attempts), and so are the events read.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

import spead2
import spead2.send.asyncio
from tests.helpers.tools import REPO, free_port

aiohttp = pytest.importorskip("aiohttp", reason="the web examples need aiohttp")
from aiohttp import web  # noqa: E402

POLL_LIMIT = 200
POLL_INTERVAL = 0.05
EVENT_LIMIT = 100  # events read while waiting for one (two a second are sent)

sys.path.insert(0, str(REPO / "examples"))


@contextlib.asynccontextmanager
async def aiohttp_service(spead_port: int) -> AsyncIterator[int]:
    web_service = importlib.import_module("web_service")
    runner = web.AppRunner(web_service.make_app(spead_port))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def fastapi_service(spead_port: int) -> AsyncIterator[int]:
    pytest.importorskip("fastapi", reason="the FastAPI example needs fastapi")
    uvicorn = pytest.importorskip("uvicorn", reason="the FastAPI example needs uvicorn")
    module = importlib.import_module("fastapi_service")
    config = uvicorn.Config(module.make_app(spead_port), log_level="warning", access_log=False)
    server = module.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(POLL_LIMIT):
            if server.started or task.done():
                break
            await asyncio.sleep(POLL_INTERVAL)
        assert server.started, "uvicorn did not start"
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True  # what Ctrl-C does: the shutdown must end the event streams
        await asyncio.wait_for(task, 20)
        sock.close()


SERVICES = {"aiohttp": aiohttp_service, "fastapi": fastapi_service}


@pytest.fixture(params=sorted(SERVICES))
async def service(request: pytest.FixtureRequest) -> AsyncIterator[tuple[aiohttp.ClientSession, int]]:
    spead_port = free_port()
    async with SERVICES[request.param](spead_port) as http_port:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http_port}") as client:
            yield client, spead_port


def make_sender(port: int) -> tuple[spead2.send.asyncio.UdpStream, spead2.send.ItemGroup]:
    stream = spead2.send.asyncio.UdpStream(
        spead2.ThreadPool(), [("127.0.0.1", port)], spead2.send.StreamConfig(rate=1e7)
    )
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "timestamp", "Sample counter", (), format=[("u", 48)])
    group.add_item(0x1001, "spectrum", "Power per channel", (64,), dtype=np.float32)
    group.add_item(0x1002, "label", "Free text", (None,), format=[("c", 8)])
    group.add_item(0x1003, "gains", "Complex gains", (2,), dtype=np.complex64)
    return stream, group


async def get_json(client: aiohttp.ClientSession, path: str) -> Any:
    async with client.get(path) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def wait_for(client: aiohttp.ClientSession, predicate: Callable[[Any], bool]) -> Any:
    for _ in range(POLL_LIMIT):
        stats = await get_json(client, "/api/stats")
        if predicate(stats):
            return stats
        await asyncio.sleep(POLL_INTERVAL)
    raise AssertionError(f"condition not reached; last stats {stats}")


async def next_event(response: aiohttp.ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next server-sent event: ``(event type, data)``."""
    kind, data = "", ""
    while True:
        line = (await asyncio.wait_for(response.content.readline(), 10)).decode()
        assert line, "the event stream ended"
        line = line.rstrip("\n")
        if not line:
            if data:
                return kind, json.loads(data)
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            kind = value
        elif field == "data":
            data += value


async def test_live_statistics_and_values(service: tuple[aiohttp.ClientSession, int]) -> None:
    client, spead_port = service
    stats = await get_json(client, "/api/stats")
    assert stats["heaps"] == 0 and stats["state"] == "waiting"
    assert await get_json(client, "/api/items") == {}

    stream, group = make_sender(spead_port)
    for i in range(5):
        group["timestamp"].value = 1000 + i
        group["spectrum"].value = np.arange(64, dtype=np.float32) + i
        group["label"].value = f"heap {i}"
        group["gains"].value = np.array([1 + 2j, -1j], np.complex64) * (i + 1)
        await stream.async_send_heap(group.get_heap())
    stats = await wait_for(client, lambda s: s["heaps"] >= 5)
    assert stats["heaps"] == 5 and stats["bad_heaps"] == 0 and stats["state"] == "receiving"
    assert stats["bytes"] > 5 * 64 * 4
    (stream_stats,) = stats["streams"]
    assert stream_stats["heaps"] >= 5 and stream_stats["packets"] >= 5
    assert stats["incomplete_heaps"] == 0 and stream_stats["incomplete_heaps_evicted"] == 0

    items = await get_json(client, "/api/items")
    assert set(items) == {"timestamp", "spectrum", "label", "gains"}
    assert items["timestamp"]["value"] == 1004 and items["timestamp"]["id"] == 0x1000
    assert items["label"]["value"] == "heap 4"
    spectrum = items["spectrum"]["value"]  # 64 elements: summarised
    assert spectrum["shape"] == [64] and spectrum["dtype"] == "float32"
    assert spectrum["first"] == list(range(4, 20))
    assert (spectrum["min"], spectrum["max"]) == (4.0, 67.0)
    assert spectrum["mean"] == pytest.approx(35.5)
    assert items["gains"]["value"] == {"real": [5.0, 0.0], "imag": [10.0, -5.0]}

    # The full array, as JSON and as a .npy file.
    full = await get_json(client, "/api/items/spectrum")
    assert full["value"] == list(range(4, 68)) and full["shape"] == [64]
    async with client.get("/api/items/spectrum", params={"format": "npy"}) as response:
        assert response.status == 200
        array = np.load(io.BytesIO(await response.read()))
    np.testing.assert_array_equal(array, np.arange(64, dtype=np.float32) + 4)
    for path in ("/api/items/nothing", "/api/items/nothing?format=npy", "/static/missing.js"):
        async with client.get(path) as response:
            assert response.status == 404, path

    # The page and everything it loads come from the service itself.
    async with client.get("/") as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
    assert 'src="static/live.js"' in page and "http://" not in page and "https://" not in page
    async with client.get("/static/live.js") as response:
        assert response.status == 200 and response.content_type == "text/javascript"
        assert 'new EventSource("api/events")' in await response.text()
    async with client.get("/static/live.css") as response:
        assert response.status == 200 and response.content_type == "text/css"


async def test_updates_are_pushed(service: tuple[aiohttp.ClientSession, int]) -> None:
    client, spead_port = service
    stream, group = make_sender(spead_port)
    async with client.get("/api/events") as events:
        assert events.status == 200 and events.content_type == "text/event-stream"
        kind, snapshot = await next_event(events)
        assert kind == "snapshot" and snapshot["items"] == {}
        group["spectrum"].value = np.linspace(0, 1, 64, dtype=np.float32)
        await stream.async_send_heap(group.get_heap())
        for _ in range(EVENT_LIMIT):
            kind, update = await next_event(events)
            assert kind == "update"
            if "spectrum" in update["items"]:
                break
        spectrum = update["items"]["spectrum"]
        assert spectrum["kind"] == "spectrum" and spectrum["line"][-1] == 1.0
        assert len(spectrum["row"]) == 64 and update["stats"]["heaps"] == 1


async def test_keeps_listening_after_a_stop_heap(service: tuple[aiohttp.ClientSession, int]) -> None:
    client, spead_port = service
    stream, group = make_sender(spead_port)
    group["timestamp"].value = 1
    await stream.async_send_heap(group.get_heap())
    await stream.async_send_heap(group.get_end())
    stats = await wait_for(client, lambda s: s["state"] == "ended")
    assert stats["streams_ended"] == 1 and stats["heaps"] == 2  # the stop heap is a heap too
    # The next stream, on the same port, with different items.
    stream, group = make_sender(spead_port)
    new = spead2.send.ItemGroup()
    new.add_item(0x2000, "power", "Total power", (), dtype=np.float64)
    new["power"].value = 3.5
    await stream.async_send_heap(new.get_heap())
    stats = await wait_for(client, lambda s: s["state"] == "receiving")
    assert stats["heaps"] == 3 and stats["streams_ended"] == 1
    items = await get_json(client, "/api/items")
    assert set(items) == {"power"} and items["power"]["value"] == 3.5


async def test_bad_heap_is_counted_not_fatal(service: tuple[aiohttp.ClientSession, int]) -> None:
    client, spead_port = service
    stream, group = make_sender(spead_port)
    group["spectrum"].value = np.zeros(64, np.float32)
    await stream.async_send_heap(group.get_heap())
    # A heap whose spectrum is too short for its descriptor's shape.
    heap = spead2.send.Heap()
    heap.add_item(spead2.Item(0x1001, "spectrum", "", (4,), dtype=np.float32,
                              value=np.ones(4, np.float32)))
    await stream.async_send_heap(heap)
    group["spectrum"].value = np.full(64, 7, np.float32)
    await stream.async_send_heap(group.get_heap())
    stats = await wait_for(client, lambda s: s["heaps"] >= 3)
    assert stats["bad_heaps"] == 1
    items = await get_json(client, "/api/items")
    assert items["spectrum"]["value"]["first"][0] == 7.0


@pytest.mark.parametrize("framework", sorted(SERVICES))
async def test_shutdown_ends_open_event_streams(framework: str) -> None:
    # An open page must not hold the server up when it is asked to stop.
    serving = SERVICES[framework](free_port())
    http_port = await serving.__aenter__()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{http_port}") as client:
            async with client.get("/api/events") as events:
                assert (await next_event(events))[0] == "snapshot"
                closing = asyncio.create_task(serving.__aexit__(None, None, None))
                await asyncio.wait_for(events.content.read(), 10)  # to the end of the stream
                await asyncio.wait_for(closing, 10)
    finally:
        if "closing" not in locals():
            await serving.__aexit__(None, None, None)
