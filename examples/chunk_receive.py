"""Receive a digitiser-like stream into chunks, and compute per-chunk statistics with numpy.

A simulated digitiser sends heaps of ``HEAP_SAMPLES`` 8-bit ADC samples; each
heap carries its timestamp (in samples) as an immediate item, sent in every
packet (``repeat_pointers``). A chunk stream places each heap straight into
a chunk of ``HEAPS_PER_CHUNK`` heaps, using the timestamp:

    chunk_id   = timestamp // (HEAP_SAMPLES * HEAPS_PER_CHUNK)
    heap_index = timestamp // HEAP_SAMPLES % HEAPS_PER_CHUNK

and per chunk we report how many heaps arrived (``chunk.present``) and the
mean power of their samples. The sender deliberately loses one packet of
every ``--drop``-th heap, which shows up as missing heaps.

The place callback is a numba ``cfunc`` wrapped in ``scipy.LowLevelCallable``
(exactly as for the C++ spead2) when numba and scipy are installed, and a
plain Python function otherwise (or with ``--python-place``).

    python examples/chunk_receive.py [--heaps 256] [--drop 10] [--udp] [--python-place]

By default the packets are received from memory; ``--udp`` sends them over
UDP loopback instead. Either way the run ends by itself.
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

import numpy as np

import spead2
import spead2.recv
import spead2.send

HEAP_SAMPLES = 4096
HEAPS_PER_CHUNK = 16
PACKET_PAYLOAD = 1024
TIMESTAMP_ID = 0x1600
ADC_ID = 0x3300
#: Header (8) + 6 item pointers (heap cnt, heap length, payload offset and
#: length, timestamp, ADC samples) + the payload.
MAX_PACKET_SIZE = 8 + 6 * 8 + PACKET_PAYLOAD


def amplitude(chunk_id: int) -> int:
    """The simulated signal's amplitude during a chunk (so each chunk's power differs)."""
    return 20 + 10 * (chunk_id % 5)


# -- place callbacks ---------------------------------------------------------------------


def python_place(data: spead2.recv.ChunkPlaceData) -> None:
    """Place a heap by its timestamp (``data.items[0]``); heaps without one are rejected."""
    timestamp = data.items[0]
    if timestamp < 0:
        return
    heap = timestamp // HEAP_SAMPLES
    data.chunk_id = heap // HEAPS_PER_CHUNK
    data.heap_index = heap % HEAPS_PER_CHUNK
    data.heap_offset = data.heap_index * HEAP_SAMPLES


def numba_place() -> Any:
    """The same callback compiled with numba, as a ``scipy.LowLevelCallable`` (None without numba)."""
    try:
        import numba
        import scipy
        from numba import types

        from spead2.numba import intp_to_voidptr
        from spead2.recv.numba import chunk_place_data
    except ImportError:
        return None

    @numba.cfunc(types.void(types.CPointer(chunk_place_data), types.size_t), nopython=True)
    def place(data_ptr: Any, data_size: Any) -> None:  # pragma: no cover - runs as machine code
        data = numba.carray(data_ptr, 1)
        items = numba.carray(intp_to_voidptr(data[0].items), 1, dtype=np.int64)
        timestamp = items[0]
        if timestamp >= 0:
            heap = timestamp // HEAP_SAMPLES
            data[0].chunk_id = heap // HEAPS_PER_CHUNK
            data[0].heap_index = heap % HEAPS_PER_CHUNK
            data[0].heap_offset = data[0].heap_index * HEAP_SAMPLES

    return scipy.LowLevelCallable(place.ctypes, signature="void (void *, size_t)")


# -- the simulated digitiser -------------------------------------------------------------


def digitiser_packets(heaps: int, drop: int) -> list[bytes]:
    """The packets of ``heaps`` heaps (a sine wave) then a stop heap; one packet lost every ``drop`` heaps."""
    flavour = spead2.Flavour(4, 64, 48, 0)
    group = spead2.send.ItemGroup(flavour=flavour)
    group.add_item(TIMESTAMP_ID, "timestamp", "first sample's index", (), format=[("u", 48)])
    group.add_item(ADC_ID, "adc_samples", "ADC samples", (HEAP_SAMPLES,), dtype=np.int8)
    phase = np.arange(HEAP_SAMPLES) * (2 * np.pi / 64)  # 64 samples per cycle
    packets: list[bytes] = []
    for i in range(heaps):
        timestamp = i * HEAP_SAMPLES
        group["timestamp"].value = timestamp
        group["adc_samples"].value = np.round(
            amplitude(i // HEAPS_PER_CHUNK) * np.sin(phase)
        ).astype(np.int8)
        heap = group.get_heap(descriptors="none", data="all")
        heap.repeat_pointers = True  # every packet carries the timestamp
        heap_packets = list(spead2.send.PacketGenerator(heap, i + 1, MAX_PACKET_SIZE))
        if drop and i % drop == drop - 1:
            del heap_packets[-1]  # the heap stays incomplete
        packets += heap_packets
    packets += spead2.send.PacketGenerator(group.get_end(), heaps + 1, MAX_PACKET_SIZE)
    return packets


# -- receiving ---------------------------------------------------------------------------


def make_stream(place: Any, chunks: int = 4) -> spead2.recv.ChunkRingStream:
    """A chunk stream with ``chunks`` chunks in circulation."""
    chunk_config = spead2.recv.ChunkStreamConfig(items=[TIMESTAMP_ID], max_chunks=2, place=place)
    stream = spead2.recv.ChunkRingStream(
        spead2.ThreadPool(),
        spead2.recv.StreamConfig(max_heaps=4),
        chunk_config,
        spead2.recv.ChunkRingbuffer(chunks),
        spead2.recv.ChunkRingbuffer(chunks),
    )
    for _ in range(chunks):
        stream.add_free_chunk(
            spead2.recv.Chunk(
                present=np.zeros(HEAPS_PER_CHUNK, np.uint8),
                data=np.zeros((HEAPS_PER_CHUNK, HEAP_SAMPLES), np.int8),
            )
        )
    return stream


def consume(stream: spead2.recv.ChunkRingStream) -> None:
    """Per chunk: heaps received and mean power; every chunk goes back to the free ring."""
    heaps = 0
    for chunk in stream.data_ringbuffer:  # until the stream stops (stop heap or end of input)
        present = chunk.present.astype(bool)
        samples = chunk.data[present].astype(np.float32)
        power = float(np.mean(samples**2)) if samples.size else float("nan")
        heaps += int(present.sum())
        missing = np.flatnonzero(~present).tolist()
        print(
            f"chunk {chunk.chunk_id:3d}: {present.sum():2d}/{HEAPS_PER_CHUNK} heaps, "
            f"mean power {power:7.1f} (expected {amplitude(chunk.chunk_id) ** 2 / 2:7.1f})"
            + (f", missing heaps {missing}" if missing else "")
        )
        stream.add_free_chunk(chunk)
    stats = stream.stats
    print(
        f"received {heaps} complete heaps in {stats['packets']} packets; "
        f"incomplete {stats['incomplete_heaps_evicted'] + stats['incomplete_heaps_flushed']}, "
        f"too old {stats['too_old_heaps']}, rejected {stats['rejected_heaps']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heaps", type=int, default=256, help="heaps to send [%(default)s]")
    parser.add_argument("--drop", type=int, default=10,
                        help="lose a packet of every DROP-th heap (0: none) [%(default)s]")
    parser.add_argument("--udp", action="store_true", help="send over UDP loopback")
    parser.add_argument("--python-place", action="store_true",
                        help="use the Python place callback even if numba is available")
    args = parser.parse_args()

    place = None if args.python_place else numba_place()
    print(f"place callback: {'numba cfunc' if place is not None else 'Python function'}")
    stream = make_stream(place if place is not None else python_place)
    packets = digitiser_packets(args.heaps, args.drop)
    if not args.udp:
        stream.add_buffer_reader(b"".join(packets))
        consume(stream)
        return
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    receiver.bind(("127.0.0.1", 0))
    stream.add_udp_reader(receiver)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for i, packet in enumerate(packets):
            sender.sendto(packet, receiver.getsockname())
            if i % 64 == 63:
                time.sleep(0.002)  # pace: the kernel drops what overflows the socket buffer
    receiver.close()
    consume(stream)


if __name__ == "__main__":
    main()
