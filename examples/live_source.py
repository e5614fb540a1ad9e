"""What the web examples receive, their command line, and the demo values they can feed themselves with.

Shared by ``web_service.py`` (aiohttp) and ``fastapi_service.py`` (FastAPI),
which import it from this directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio
from spead2.tools.live import LiveView


def parse_args(description: str) -> argparse.Namespace:
    """The command line of both examples (and logging set up for them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spead-port", type=int, default=8888, help="UDP port to receive on [8888]")
    parser.add_argument("--bind", default="127.0.0.1", help="address to receive on [127.0.0.1]")
    parser.add_argument("--http-host", default="127.0.0.1", help="address to serve on [127.0.0.1]")
    parser.add_argument("--http-port", type=int, default=8080, help="HTTP port [8080]")
    parser.add_argument("--demo", action="store_true", help="feed the service with demo heaps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return args


def make_stream(port: int, bind: str) -> spead2.recv.asyncio.Stream:
    """A UDP receive stream that outlives stop heaps: each one ends a stream, not the service."""
    config = spead2.recv.StreamConfig(max_heaps=4, stop_on_stop_item=False)
    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool(), config)
    stream.add_udp_reader(port, bind_hostname=bind)
    return stream


async def receive(stream: spead2.recv.asyncio.Stream, live: LiveView) -> None:
    """Hand every heap to the live view until the stream is stopped."""
    async for heap in stream:
        live.add_heap(heap)


async def demo_sender(port: int, bind: str) -> None:
    """Feeds the service changing values until cancelled (``--demo``)."""
    stream = spead2.send.asyncio.UdpStream(
        spead2.ThreadPool(), [(bind, port)], spead2.send.StreamConfig(rate=1e7)
    )
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "timestamp", "Sample counter", shape=(), format=[("u", 48)])
    item_group.add_item(0x1001, "temperature", "Degrees Celsius", shape=(), dtype=np.float64)
    item_group.add_item(0x1002, "spectrum", "Power per channel", shape=(1024,), dtype=np.float32)
    item_group.add_item(0x1003, "beam", "Beam power, 32 x 32 pixels", shape=(32, 32),
                        dtype=np.float32)
    item_group.add_item(0x1004, "target", "Source being observed", shape=(None,),
                        format=[("c", 8)])
    rng = np.random.default_rng()
    channels = np.arange(1024)
    grid = np.arange(32) - 15.5
    i = 0
    while True:
        t = i / 5
        line = 400 + 250 * math.sin(t / 8)  # a line drifting across the band
        spectrum = (1 + 0.5 * np.sin(channels / 150)) * 10
        spectrum += 40 * np.exp(-0.5 * ((channels - line) / 6) ** 2)
        spectrum += 25 * np.exp(-0.5 * ((channels - 820) / 3) ** 2)
        item_group["timestamp"].value = i * 4096
        item_group["temperature"].value = 20 + 5 * math.sin(t / 6)
        item_group["spectrum"].value = (spectrum + rng.normal(0, 1.5, 1024)).astype(np.float32)
        x0, y0 = 6 * math.cos(t / 4), 6 * math.sin(t / 4)
        beam = np.exp(-((grid[None, :] - x0) ** 2 + (grid[:, None] - y0) ** 2) / 30)
        item_group["beam"].value = (beam + rng.normal(0, 0.03, (32, 32))).astype(np.float32)
        item_group["target"].value = "PKS 1934-638" if (i // 100) % 2 == 0 else "3C 286"
        # Re-send descriptors now and then, so a service started later catches up.
        descriptors = "all" if i % 10 == 0 else "stale"
        await stream.async_send_heap(item_group.get_heap(descriptors=descriptors))
        i += 1
        await asyncio.sleep(0.2)
