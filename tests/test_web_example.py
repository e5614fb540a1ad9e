"""``examples/web_service.py``: real HTTP requests while a sender feeds the service.

The application is served by aiohttp on a free loopback port, in this test's
event loop; heaps come over loopback UDP from a ``spead2.send.asyncio``
stream. Polls are bounded (``POLL_LIMIT`` attempts).
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from tool_helpers import REPO, free_port

import spead2
import spead2.send.asyncio

aiohttp = pytest.importorskip("aiohttp", reason="the web example needs aiohttp")
from aiohttp import test_utils  # noqa: E402

POLL_LIMIT = 200
POLL_INTERVAL = 0.05


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("web_service", REPO / "examples" / "web_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["web_service"] = module
    spec.loader.exec_module(module)
    return module


web_service = load_example()


@pytest.fixture
async def service() -> AsyncIterator[tuple[test_utils.TestClient, int]]:
    spead_port = free_port()
    app = web_service.make_app(spead_port)
    server = test_utils.TestServer(app, host="127.0.0.1", port=free_port())
    client = test_utils.TestClient(server)
    await client.start_server()
    try:
        yield client, spead_port
    finally:
        await client.close()


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


async def get_json(client: test_utils.TestClient, path: str) -> Any:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "application/json"
    return await response.json()


async def wait_for(client: test_utils.TestClient, predicate: Any) -> dict[str, Any]:
    for _ in range(POLL_LIMIT):
        stats = await get_json(client, "/api/stats")
        if predicate(stats):
            return stats
        await asyncio.sleep(POLL_INTERVAL)
    raise AssertionError(f"condition not reached; last stats {stats}")


async def test_live_statistics_and_values(service: tuple[test_utils.TestClient, int]) -> None:
    client, spead_port = service
    stats = await get_json(client, "/api/stats")
    assert stats["heaps"] == 0 and stats["ended"] is False
    assert await get_json(client, "/api/items") == {}

    stream, group = make_sender(spead_port)
    for i in range(5):
        group["timestamp"].value = 1000 + i
        group["spectrum"].value = np.arange(64, dtype=np.float32) + i
        group["label"].value = f"heap {i}"
        group["gains"].value = np.array([1 + 2j, -1j], np.complex64) * (i + 1)
        await stream.async_send_heap(group.get_heap())
    stats = await wait_for(client, lambda s: s["heaps"] >= 5)
    assert stats["heaps"] == 5 and stats["bad_heaps"] == 0
    assert stats["bytes"] > 5 * 64 * 4
    assert stats["stream"]["heaps"] >= 5 and stats["stream"]["packets"] >= 5
    assert stats["stream"]["incomplete_heaps_evicted"] == 0

    items = await get_json(client, "/api/items")
    assert set(items) == {"timestamp", "spectrum", "label", "gains"}
    assert items["timestamp"]["value"] == 1004
    assert items["timestamp"]["id"] == 0x1000
    assert items["label"]["value"] == "heap 4"
    spectrum = items["spectrum"]["value"]  # 64 elements: summarised
    assert spectrum["shape"] == [64] and spectrum["dtype"] == "float32"
    assert spectrum["first"] == list(range(4, 20))
    assert (spectrum["min"], spectrum["max"]) == (4.0, 67.0)
    assert spectrum["mean"] == pytest.approx(35.5)
    assert items["gains"]["value"] == {"real": [5.0, 0.0], "imag": [10.0, -5.0]}

    # The page shows the heap count where a browser test can read it, and
    # refreshes itself from the JSON endpoints.
    response = await client.get("/")
    assert response.status == 200 and response.content_type == "text/html"
    page = await response.text()
    match = re.search(r'<p id="stats" data-heaps="(\d+)">Heaps received: <span id="heap-count">(\d+)</span>', page)
    assert match and match[1] == match[2] == "5"
    assert 'fetch("api/stats")' in page and "setInterval(refresh" in page
    assert "http://" not in page and "https://" not in page  # self-contained

    await stream.async_send_heap(group.get_end())
    stats = await wait_for(client, lambda s: s["ended"])
    assert stats["heaps"] == 5
    response = await client.get("/")
    assert "stream ended" in await response.text()


async def test_bad_heap_is_counted_not_fatal(service: tuple[test_utils.TestClient, int]) -> None:
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


def test_json_value_conversions() -> None:
    convert = web_service.json_value
    assert convert(np.uint32(7)) == 7
    assert convert(np.float64(1.5)) == 1.5
    assert convert(np.arange(3)) == [0, 1, 2]
    assert convert(b"ab") == "ab"
    assert convert(float("nan")) == "nan"
    assert convert(np.array([(1, 2)], dtype=[("a", "u1"), ("b", "i2")])) == [[1, 2]]
    big = convert(np.arange(100, dtype=np.int16).reshape(10, 10))
    assert big["shape"] == [10, 10] and big["first"] == list(range(16)) and big["max"] == 99
