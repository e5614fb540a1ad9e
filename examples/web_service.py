"""A web service that receives a SPEAD stream in the background and serves what arrives.

The receive stream is a ``spead2.recv.asyncio.Stream`` on the web server's own
event loop: no threads, and request handlers read the latest values directly.

* ``/``           an HTML page (self-contained) that refreshes itself every second;
* ``/api/stats``  live statistics as JSON (heaps, Gb/s, the stream's counters);
* ``/api/items``  the latest value of every item as JSON.

Run it and point a sender at it::

    python examples/web_service.py --spead-port 8888 --http-port 8080
    spead2_send --rate 0.001 --heap-size 4096 --items 2 127.0.0.1:8888

or let it feed itself with changing demo values::

    python examples/web_service.py --demo

then open http://127.0.0.1:8080/ (needs aiohttp: ``pip install aiohttp``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from aiohttp import web

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio

#: Array values longer than this are summarised in JSON (shape, dtype, first elements, min/max/mean).
MAX_ELEMENTS = 16
RATE_WINDOW = 2.0  # seconds over which the rate is averaged


def json_value(value: Any) -> Any:
    """A JSON-friendly form of an item value (big arrays summarised)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf" and value.size > MAX_ELEMENTS:
            flat = value.ravel()
            return {
                "shape": list(value.shape),
                "dtype": str(value.dtype),
                "first": flat[:MAX_ELEMENTS].tolist(),
                "min": flat.min().item(),
                "max": flat.max().item(),
                "mean": float(flat.mean()),
            }
        if value.dtype.kind == "c":
            return {"real": json_value(value.real), "imag": json_value(value.imag)}
        return json_value(value.tolist())
    if isinstance(value, np.generic):
        return json_value(value.item())
    if isinstance(value, complex):
        return {"real": value.real, "imag": value.imag}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


class Receiver:
    """Receives the stream on the running loop and keeps the latest values and statistics."""

    def __init__(self, port: int, bind: str) -> None:
        self.stream = spead2.recv.asyncio.Stream(
            spead2.ThreadPool(), spead2.recv.StreamConfig(max_heaps=4)
        )
        self.stream.add_udp_reader(port, bind_hostname=bind)
        self.item_group = spead2.ItemGroup()
        self.heaps = 0
        self.bad_heaps = 0
        self.bytes = 0
        self.values: dict[str, Any] = {}
        self.updated: dict[str, float] = {}
        self.ended = False
        self.started = time.time()
        self._window: collections.deque[tuple[float, int]] = collections.deque()

    async def run(self) -> None:
        """Take heaps until the stream ends (a stop heap) or is stopped."""
        async for heap in self.stream:
            self.heaps += 1
            now = time.monotonic()
            size = sum(memoryview(raw).nbytes for raw in heap.get_items() if not raw.is_immediate)
            self.bytes += size
            self._window.append((now, size))
            try:
                updated = self.item_group.update(heap)
            except ValueError as exc:  # a heap that does not match its descriptors
                self.bad_heaps += 1
                logging.warning("bad heap %d: %s", heap.cnt, exc)
                continue
            wall = time.time()
            for name, item in updated.items():
                self.values[name] = item.value
                self.updated[name] = wall
        self.ended = True

    def rate_gbps(self) -> float:
        """Payload rate over the last ``RATE_WINDOW`` seconds."""
        horizon = time.monotonic() - RATE_WINDOW
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()
        return sum(size for _, size in self._window) * 8 / RATE_WINDOW / 1e9

    def stats(self) -> dict[str, Any]:
        return {
            "heaps": self.heaps,
            "bad_heaps": self.bad_heaps,
            "bytes": self.bytes,
            "rate_gbps": self.rate_gbps(),
            "ended": self.ended,
            "uptime": time.time() - self.started,
            "stream": dict(self.stream.stats.items()),
        }

    def items(self) -> dict[str, Any]:
        result = {}
        for name, value in self.values.items():
            item = self.item_group[name]
            result[name] = {
                "id": item.id,
                "description": item.description,
                "value": json_value(value),
                "updated": self.updated[name],
            }
        return result


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>spead2 live stream</title>
<noscript><meta http-equiv="refresh" content="2"></noscript>
<style>
  body {{ font-family: sans-serif; margin: 2em; }}
  table {{ border-collapse: collapse; }}
  td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }}
  td.value {{ font-family: monospace; white-space: pre-wrap; max-width: 60em; }}
</style>
</head>
<body>
<h1>spead2 live stream</h1>
<p id="stats" data-heaps="{heaps}">Heaps received: <span id="heap-count">{heaps}</span>,
rate <span id="rate">{rate:.6f}</span> Gb/s,
incomplete heaps <span id="incomplete">{incomplete}</span>,
<span id="state">{state}</span></p>
<h2>Latest values</h2>
<table><thead><tr><th>Item</th><th>ID</th><th>Value</th></tr></thead>
<tbody id="items"></tbody></table>
<script>
async function refresh() {{
  try {{
    const [stats, items] = await Promise.all([
      fetch("api/stats").then(r => r.json()),
      fetch("api/items").then(r => r.json()),
    ]);
    const s = stats.stream;
    document.getElementById("stats").dataset.heaps = stats.heaps;
    document.getElementById("heap-count").textContent = stats.heaps;
    document.getElementById("rate").textContent = stats.rate_gbps.toFixed(6);
    document.getElementById("incomplete").textContent =
      s.incomplete_heaps_evicted + s.incomplete_heaps_flushed;
    document.getElementById("state").textContent = stats.ended ? "stream ended" : "receiving";
    const body = document.getElementById("items");
    body.replaceChildren();
    for (const [name, item] of Object.entries(items)) {{
      const row = body.insertRow();
      row.insertCell().textContent = name;
      row.insertCell().textContent = "0x" + item.id.toString(16);
      const cell = row.insertCell();
      cell.className = "value";
      cell.textContent = JSON.stringify(item.value);
    }}
  }} catch (e) {{
    document.getElementById("state").textContent = "server unreachable";
  }}
}}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""


async def page(request: web.Request) -> web.Response:
    receiver: Receiver = request.app[RECEIVER]
    stats = receiver.stats()
    s = stats["stream"]
    html = PAGE.format(
        heaps=stats["heaps"],
        rate=stats["rate_gbps"],
        incomplete=s["incomplete_heaps_evicted"] + s["incomplete_heaps_flushed"],
        state="stream ended" if stats["ended"] else "receiving",
    )
    return web.Response(text=html, content_type="text/html")


async def api_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[RECEIVER].stats())


async def api_items(request: web.Request) -> web.Response:
    return web.json_response(request.app[RECEIVER].items())


RECEIVER = web.AppKey("receiver", Receiver)


async def demo_sender(port: int, bind: str) -> None:
    """Feeds the service changing values until cancelled (``--demo``)."""
    stream = spead2.send.asyncio.UdpStream(
        spead2.ThreadPool(), [(bind, port)], spead2.send.StreamConfig(rate=1e6)
    )
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "timestamp", "Sample counter", shape=(), format=[("u", 48)])
    item_group.add_item(0x1001, "temperature", "Degrees Celsius", shape=(), dtype=np.float64)
    item_group.add_item(0x1002, "spectrum", "Power per channel", shape=(256,), dtype=np.float32)
    rng = np.random.default_rng()
    i = 0
    while True:
        item_group["timestamp"].value = i
        item_group["temperature"].value = 20 + 5 * math.sin(i / 10)
        item_group["spectrum"].value = rng.random(256, dtype=np.float32)
        # Re-send descriptors now and then, so a service started later catches up.
        descriptors = "all" if i % 10 == 0 else "stale"
        await stream.async_send_heap(item_group.get_heap(descriptors=descriptors))
        i += 1
        await asyncio.sleep(0.2)


def make_app(spead_port: int, bind: str = "127.0.0.1", demo: bool = False) -> web.Application:
    """The web application; the stream starts and stops with it."""
    app = web.Application()

    async def receive_in_background(app: web.Application) -> AsyncIterator[None]:
        receiver = Receiver(spead_port, bind)  # created here: on the server's loop
        app[RECEIVER] = receiver
        tasks = [asyncio.create_task(receiver.run())]
        if demo:
            tasks.append(asyncio.create_task(demo_sender(spead_port, bind)))
        yield
        receiver.stream.stop()
        for task in tasks[1:]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(receive_in_background)
    app.router.add_get("/", page)
    app.router.add_get("/api/stats", api_stats)
    app.router.add_get("/api/items", api_items)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spead-port", type=int, default=8888, help="UDP port to receive on [8888]")
    parser.add_argument("--bind", default="127.0.0.1", help="address to receive on [127.0.0.1]")
    parser.add_argument("--http-host", default="127.0.0.1", help="address to serve on [127.0.0.1]")
    parser.add_argument("--http-port", type=int, default=8080, help="HTTP port [8080]")
    parser.add_argument("--demo", action="store_true", help="feed the service with demo heaps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    app = make_app(args.spead_port, args.bind, args.demo)
    web.run_app(app, host=args.http_host, port=args.http_port)


if __name__ == "__main__":
    main()
