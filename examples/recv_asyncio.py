"""Receive heaps in asyncio: ``async for heap in stream`` on a ``spead2.recv.asyncio.Stream``.

The stream does its protocol work on the running event loop itself, so the
program stays single-threaded. By default a sender runs as another task on
the same loop, so the example runs on its own; with ``--no-sender`` it waits
for another program's stream, e.g. ``spead2_send --heaps 5 127.0.0.1:8888``.

    python examples/recv_asyncio.py [--port 8888] [--heaps 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio


async def receive(stream: spead2.recv.asyncio.Stream) -> int:
    """Print every heap's new values until the sender ends the stream."""
    item_group = spead2.ItemGroup()
    heaps = 0
    async for heap in stream:  # ends at the stop heap (or stream.stop())
        try:
            updated = item_group.update(heap)
        except ValueError as exc:  # a heap that does not match its descriptors
            print(f"heap {heap.cnt}: bad heap ({exc})")
            continue
        for name, item in updated.items():
            print(f"heap {heap.cnt}: {name} = {item.value}")
        heaps += 1
    stats = stream.stats
    print(f"received {heaps} heaps in {stats['packets']} packets")
    return heaps


async def send(port: int, heaps: int) -> None:
    """A small sender to receive from (see send_asyncio.py)."""
    stream = spead2.send.asyncio.UdpStream(
        spead2.ThreadPool(), [("127.0.0.1", port)], spead2.send.StreamConfig(rate=1e8)
    )
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "label", "A string", shape=(None,), format=[("c", 8)])
    item_group.add_item(0x1001, "matrix", "A small matrix", shape=(2, 2), dtype=np.int32)
    for i in range(heaps):
        item_group["label"].value = f"heap number {i}"
        item_group["matrix"].value = np.eye(2, dtype=np.int32) * i
        await stream.async_send_heap(item_group.get_heap())
    await stream.async_send_heap(item_group.get_end())


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="UDP port on 127.0.0.1 [8888]")
    parser.add_argument("--heaps", type=int, default=5, help="heaps the built-in sender sends [5]")
    parser.add_argument("--no-sender", action="store_true", help="only receive")
    args = parser.parse_args()

    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool(), spead2.recv.StreamConfig(max_heaps=4))
    stream.add_udp_reader(args.port, bind_hostname="127.0.0.1")  # bound before anyone sends
    if args.no_sender:
        await receive(stream)
        return
    sender = asyncio.create_task(send(args.port, args.heaps))
    # Bound the run even if the end of stream were lost on the way.
    loop = asyncio.get_running_loop()
    watchdog = loop.call_later(10, stream.stop)
    await receive(stream)
    watchdog.cancel()
    await sender


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
