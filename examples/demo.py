"""Loopback demo: a sender and a receiver exchanging real heaps over UDP, printing what arrived.

The sender and receiver run concurrently on one asyncio loop and talk over
loopback UDP (127.0.0.1, a free port). Every heap goes through the full path:
ItemGroup → HeapGenerator → packetizer → sendmsg → socket → heap assembly →
ItemGroup.update. The receiver prints each heap's items, then the rate and
the stream's statistics.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time

import numpy as np

import spead2
import spead2.recv.asyncio
import spead2.send.asyncio


async def send(port: int, heaps: int, pool: spead2.ThreadPool) -> None:
    # A rate limit keeps the sender from outrunning the receiver's socket buffer.
    config = spead2.send.StreamConfig(max_packet_size=1472, rate=50e6)
    stream = spead2.send.asyncio.UdpStream(pool, [("127.0.0.1", port)], config)
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


def open_receiver(pool: spead2.ThreadPool) -> tuple[spead2.recv.asyncio.Stream, int]:
    config = spead2.recv.StreamConfig(max_heaps=4)
    config.add_stat("invalid_packets")  # not in the default list: counted on request
    stream = spead2.recv.asyncio.Stream(pool, config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # a free port, chosen by the kernel
    port = sock.getsockname()[1]
    stream.add_udp_reader(sock)  # the stream duplicates the socket
    sock.close()
    return stream, port


async def receive(stream: spead2.recv.asyncio.Stream) -> tuple[int, int]:
    group = spead2.ItemGroup()
    received = 0
    payload = 0
    async for heap in stream:
        updated = group.update(heap)
        if not updated:
            continue
        received += 1
        payload += sum(len(memoryview(item)) for item in heap.get_items())
        samples = updated["samples"].value
        print(
            f"heap {heap.cnt:3d}: timestamp={updated['timestamp'].value} "
            f"label={updated['label'].value!r} samples{samples.shape} "
            f"mean={samples.mean():+.2f}"
        )
    stats = stream.stats
    print("statistics: " + ", ".join(f"{name}={value}" for name, value in stats.items()))
    return received, payload


async def main(heaps: int) -> None:
    pool = spead2.ThreadPool()
    stream, port = open_receiver(pool)
    print(f"receiving on udp://127.0.0.1:{port}")
    start = time.perf_counter()
    (received, payload), _ = await asyncio.gather(receive(stream), send(port, heaps, pool))
    elapsed = time.perf_counter() - start
    print(
        f"received {received}/{heaps} data heaps ({payload} bytes of item data) in "
        f"{elapsed * 1000:.1f} ms: {received / elapsed:.0f} heaps/s, "
        f"{payload * 8 / elapsed / 1e6:.1f} Mb/s"
    )
    if received != heaps:
        raise SystemExit(f"lost heaps: {heaps - received}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heaps", type=int, default=10, help="data heaps to send (default 10)")
    args = parser.parse_args()
    if args.heaps < 0:
        parser.error(f"--heaps must be non-negative, got {args.heaps}")
    asyncio.run(main(args.heaps))
