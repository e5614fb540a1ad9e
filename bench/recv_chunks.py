"""Chunked receive-from-memory throughput, beside the plain stream's (bench/recv_memory.py's method).

A digitiser-like stream (each heap carries a timestamp immediate in every
packet) is received from memory with ``add_buffer_reader`` into chunks of
``--heaps-per-chunk`` heaps by a ``ChunkRingStream`` (the consumer recycles
each chunk straight back to the free ring), and the same number of heaps
of the same size through a plain ``recv.Stream`` as ``recv_memory.py`` does.

Usage: python bench/recv_chunks.py [--heap-size BYTES] [--packet-size BYTES] [--heaps N]
                                   [--heaps-per-chunk N] [--place numba|python|batch]
Prints heaps/s and GB/s for both (median of --repeat runs). No thresholds: figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

import spead2
import spead2.recv
import spead2.send

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recv_memory  # noqa: E402  (the plain stream's figure, measured the same way)

TIMESTAMP_ID = 0x1600
DATA_ID = 0x3300


def encode(pool: spead2.ThreadPool, heaps: int, heap_size: int, packet_size: int) -> bytes:
    """``heaps`` heaps of ``heap_size`` bytes, timestamp in every packet, then a stop heap."""
    group = spead2.send.ItemGroup(flavour=spead2.Flavour(4, 64, 48, 0))
    group.add_item(TIMESTAMP_ID, "timestamp", "", (), format=[("u", 48)])
    group.add_item(DATA_ID, "data", "", (heap_size,), dtype=np.uint8)
    group["data"].value = np.zeros(heap_size, np.uint8)
    stream = spead2.send.BytesStream(pool, spead2.send.StreamConfig(max_packet_size=packet_size))
    for i in range(heaps):
        group["timestamp"].value = i * heap_size
        heap = group.get_heap(descriptors="none", data="all")
        heap.repeat_pointers = True
        stream.send_heap(heap)
    stream.send_heap(group.get_end())
    return stream.getvalue()


def numba_place(heap_size: int, heaps_per_chunk: int) -> Any:
    import numba
    import scipy
    from numba import types

    from spead2.numba import intp_to_voidptr
    from spead2.recv.numba import chunk_place_data

    @numba.cfunc(types.void(types.CPointer(chunk_place_data), types.size_t), nopython=True)
    def place(data_ptr: Any, data_size: Any) -> None:  # pragma: no cover - machine code
        data = numba.carray(data_ptr, 1)
        items = numba.carray(intp_to_voidptr(data[0].items), 1, dtype=np.int64)
        timestamp = items[0]
        if timestamp >= 0:
            heap = timestamp // heap_size
            data[0].chunk_id = heap // heaps_per_chunk
            data[0].heap_index = heap % heaps_per_chunk
            data[0].heap_offset = data[0].heap_index * heap_size

    return scipy.LowLevelCallable(place.ctypes, signature="void (void *, size_t)")


def python_place(heap_size: int, heaps_per_chunk: int) -> Any:
    def place(data: Any) -> None:
        timestamp = data.items[0]
        if timestamp >= 0:
            heap = timestamp // heap_size
            data.chunk_id = heap // heaps_per_chunk
            data.heap_index = heap % heaps_per_chunk
            data.heap_offset = data.heap_index * heap_size

    return place


def batch_place(heap_size: int, heaps_per_chunk: int) -> Any:
    """The same placement as :func:`numba_place`, vectorised (``spead2.recv.BatchPlace``: ours only)."""

    def place(items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        timestamp = items[:, 0]
        heap = timestamp // heap_size
        chunk_id = np.where(timestamp >= 0, heap // heaps_per_chunk, -1)
        heap_index = heap % heaps_per_chunk
        return chunk_id, heap_index, heap_index * heap_size

    return spead2.recv.BatchPlace(place)


def run_chunks(
    pool: spead2.ThreadPool, data: bytes, heaps: int, heap_size: int, heaps_per_chunk: int, place: Any
) -> float:
    chunks = 8
    config = spead2.recv.ChunkStreamConfig(items=[TIMESTAMP_ID], max_chunks=2, place=place)
    stream = spead2.recv.ChunkRingStream(
        pool, spead2.recv.StreamConfig(max_heaps=4), config,
        spead2.recv.ChunkRingbuffer(chunks), spead2.recv.ChunkRingbuffer(chunks),
    )
    for _ in range(chunks):
        stream.add_free_chunk(
            spead2.recv.Chunk(
                present=np.zeros(heaps_per_chunk, np.uint8),
                data=np.zeros(heaps_per_chunk * heap_size, np.uint8),
            )
        )
    start = time.perf_counter()
    stream.add_buffer_reader(data)
    received = 0
    for chunk in stream.data_ringbuffer:
        received += int(chunk.present.sum())
        stream.add_free_chunk(chunk)
    elapsed = time.perf_counter() - start
    if received != heaps:
        raise SystemExit(f"expected {heaps} heaps in chunks, got {received}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heap-size", type=int, default=8192)
    parser.add_argument("--packet-size", type=int, default=9000)
    parser.add_argument("--heaps", type=int, default=20000)
    parser.add_argument("--heaps-per-chunk", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--place", choices=["numba", "python", "batch"], default=None,
                        help="place callback (default: numba if installed)")
    args = parser.parse_args()
    kind = args.place
    if kind is None:
        try:
            import numba  # noqa: F401
            import scipy  # noqa: F401

            kind = "numba"
        except ImportError:
            kind = "python"
    make_place = {"numba": numba_place, "python": python_place, "batch": batch_place}[kind]
    place = make_place(args.heap_size, args.heaps_per_chunk)

    pool = spead2.ThreadPool()
    size = args.heaps * args.heap_size
    plain_data = recv_memory.encode(pool, args.heaps, args.heap_size, args.packet_size)
    plain = statistics.median(
        recv_memory.run_once(pool, plain_data, args.heaps, False) for _ in range(args.repeat)
    )
    chunk_data = encode(pool, args.heaps, args.heap_size, args.packet_size)
    chunked = statistics.median(
        run_chunks(pool, chunk_data, args.heaps, args.heap_size, args.heaps_per_chunk, place)
        for _ in range(args.repeat)
    )
    print(f"heap {args.heap_size} B, packets {args.packet_size} B, {args.heaps} heaps "
          f"(median of {args.repeat}):")
    print(f"  plain recv.Stream:            {args.heaps / plain:10,.0f} heaps/s  {size / plain / 1e9:6.3f} GB/s")
    print(f"  ChunkRingStream ({kind:6} place): {args.heaps / chunked:10,.0f} heaps/s  "
          f"{size / chunked / 1e9:6.3f} GB/s  ({args.heaps_per_chunk} heaps per chunk)")
    pool.stop()


if __name__ == "__main__":
    main()
