"""Receive-from-memory throughput: heaps decoded through add_buffer_reader.

Usage: python bench/recv_memory.py [--heap-size BYTES] [--packet-size BYTES] [--heaps N] [--update]
Prints heaps/s and GB/s (median of --repeat runs). No thresholds: figures only.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import spead2
import spead2.recv
import spead2.send


def encode(pool: spead2.ThreadPool, heaps: int, heap_size: int, packet_size: int) -> bytes:
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "data", "payload", (heap_size,), dtype=np.uint8)
    config = spead2.send.StreamConfig(max_packet_size=packet_size, max_heaps=8)
    stream = spead2.send.BytesStream(pool, config)
    stream.send_heap(group.get_heap(descriptors="all", data="none"))
    group["data"].value = np.zeros(heap_size, np.uint8)
    heap = group.get_heap(descriptors="none", data="all")
    for _ in range(heaps):
        stream.send_heap(heap)
    return stream.getvalue()


def run_once(pool: spead2.ThreadPool, data: bytes, heaps: int, update: bool) -> float:
    config = spead2.recv.StreamConfig(max_heaps=4)
    ring = spead2.recv.RingStreamConfig(heaps=64)
    stream = spead2.recv.Stream(pool, config, ring)
    group = spead2.ItemGroup()
    start = time.perf_counter()
    stream.add_buffer_reader(data)
    received = 0
    for heap in stream:
        if update:
            group.update(heap)
        received += 1
    elapsed = time.perf_counter() - start
    if received != heaps + 1:
        raise SystemExit(f"expected {heaps + 1} heaps, got {received}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heap-size", type=int, default=8192)
    parser.add_argument("--packet-size", type=int, default=9000)
    parser.add_argument("--heaps", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--update", action="store_true", help="also run ItemGroup.update per heap")
    args = parser.parse_args()
    pool = spead2.ThreadPool()
    data = encode(pool, args.heaps, args.heap_size, args.packet_size)
    times = [run_once(pool, data, args.heaps, args.update) for _ in range(args.repeat)]
    median = statistics.median(times)
    print(
        f"heap {args.heap_size} B, packets {args.packet_size} B, update={args.update}: "
        f"{args.heaps / median:,.0f} heaps/s, {args.heaps * args.heap_size / median / 1e9:.3f} GB/s "
        f"(median of {args.repeat})"
    )
    pool.stop()


if __name__ == "__main__":
    main()
