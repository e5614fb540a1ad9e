"""Send heaps from asyncio: ``spead2.send.asyncio.UdpStream`` and ``async_send_heap``.

``async_send_heap`` queues the heap at once and returns a future, so several
heaps can be in flight (up to ``StreamConfig.max_heaps``) while the loop does
other work. By default a receiver runs as another task on the same loop, so
the example runs on its own; ``--no-receiver`` only sends.

    python examples/send_asyncio.py [--port 8888] [--heaps 8]
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio


async def send(port: int, heaps: int) -> None:
    """Keep up to ``max_heaps`` heaps in flight, awaiting the oldest before queuing more."""
    config = spead2.send.StreamConfig(rate=1e8, max_heaps=4)
    stream = spead2.send.asyncio.UdpStream(spead2.ThreadPool(), [("127.0.0.1", port)], config)
    item_group = spead2.send.ItemGroup()
    item_group.add_item(0x1000, "timestamp", "Sample counter", shape=(), format=[("u", 48)])
    item_group.add_item(0x1001, "spectrum", "Power per channel", shape=(64,), dtype=np.float32)
    in_flight: list[asyncio.Future[int]] = []
    total = 0
    for i in range(heaps + 1):
        if i < heaps:
            item_group["timestamp"].value = 1000 * i
            item_group["spectrum"].value = np.full(64, i, np.float32)
            heap = item_group.get_heap()
        else:
            heap = item_group.get_end()  # tells the receiver the stream is over
        if len(in_flight) == config.max_heaps:  # the queue is full: wait for the oldest
            total += await in_flight.pop(0)
        in_flight.append(stream.async_send_heap(heap))
    total += sum(await asyncio.gather(*in_flight))
    print(f"sent {heaps} heaps and the end of stream: {total} bytes")


async def receive(stream: spead2.recv.asyncio.Stream) -> list[int]:
    """A minimal receiver, for checking what arrived (see recv_asyncio.py)."""
    item_group = spead2.ItemGroup()
    timestamps = []
    async for heap in stream:
        if item_group.update(heap):
            timestamps.append(int(item_group["timestamp"].value))
    return timestamps


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888, help="UDP port on 127.0.0.1 [8888]")
    parser.add_argument("--heaps", type=int, default=8, help="data heaps to send [8]")
    parser.add_argument("--no-receiver", action="store_true", help="only send")
    args = parser.parse_args()

    if args.no_receiver:
        await send(args.port, args.heaps)
        return
    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())  # runs on this loop
    stream.add_udp_reader(args.port, bind_hostname="127.0.0.1")
    receiver = asyncio.create_task(receive(stream))
    await send(args.port, args.heaps)
    try:
        timestamps = await asyncio.wait_for(receiver, timeout=10)
    except TimeoutError:  # the end of stream was lost: stop anyway
        stream.stop()
        timestamps = []
    print(f"receiver got {len(timestamps)} heaps, timestamps {timestamps}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
