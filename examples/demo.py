"""Loopback demo: a sender and a receiver exchanging real heaps, printing what arrived.

The sender and receiver run concurrently on one asyncio loop and talk through
an in-process queue (the network transports replace it when they land). Every
heap goes through the full path: ItemGroup → HeapGenerator → packetizer →
packets → heap assembly → ItemGroup.update.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio


async def send(queue: spead2.InprocQueue, heaps: int, pool: spead2.ThreadPool) -> None:
    config = spead2.send.StreamConfig(max_packet_size=1472, rate=0.0)
    stream = spead2.send.asyncio.InprocStream(pool, [queue], config)
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "timestamp", "Sample counter", (), format=[("u", 48)])
    group.add_item(0x1001, "samples", "Complex voltages", (256, 2), dtype=np.int16)
    group.add_item(0x1002, "label", "Free text", (None,), format=[("c", 8)])
    rng = np.random.default_rng(1)
    for i in range(heaps):
        group["timestamp"].value = 1_000_000 + 256 * i
        group["samples"].value = rng.integers(-2000, 2000, (256, 2), dtype=np.int16)
        group["label"].value = f"heap {i}"
        await stream.async_send_heap(group.get_heap())
    await stream.async_send_heap(group.get_end())
    queue.stop()


async def receive(queue: spead2.InprocQueue, pool: spead2.ThreadPool) -> int:
    stream = spead2.recv.asyncio.Stream(pool, spead2.recv.StreamConfig(max_heaps=4))
    stream.add_inproc_reader(queue)
    group = spead2.ItemGroup()
    received = 0
    async for heap in stream:
        updated = group.update(heap)
        if not updated:
            continue
        received += 1
        samples = updated["samples"].value
        print(
            f"heap {heap.cnt:3d}: timestamp={updated['timestamp'].value} "
            f"label={updated['label'].value!r} samples{samples.shape} "
            f"mean={samples.mean():+.2f}"
        )
    stats = stream.stats
    print(
        f"statistics: heaps={stats['heaps']} packets={stats['packets']} "
        f"incomplete={stats['incomplete_heaps_evicted'] + stats['incomplete_heaps_flushed']} "
        f"invalid_packets={stats['invalid_packets']}"
    )
    return received


async def main(heaps: int) -> None:
    pool = spead2.ThreadPool()
    queue = spead2.InprocQueue()
    start = time.perf_counter()
    received, _ = await asyncio.gather(receive(queue, pool), send(queue, heaps, pool))
    elapsed = time.perf_counter() - start
    print(f"received {received}/{heaps} data heaps in {elapsed * 1000:.1f} ms")
    if received != heaps:
        raise SystemExit(f"lost heaps: {heaps - received}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heaps", type=int, default=10, help="data heaps to send (default 10)")
    args = parser.parse_args()
    if args.heaps < 0:
        parser.error(f"--heaps must be non-negative, got {args.heaps}")
    asyncio.run(main(args.heaps))
