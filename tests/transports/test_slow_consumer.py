"""A consumer that sleeps between heaps: memory stays bounded, nothing is lost where it must not be.

For each transport a stream receives ``N_HEAPS`` heaps of 64 KiB (8 packets
of 8 KiB) while the consumer sleeps a little after every heap, so the ring
fills and the readers must wait (or, for UDP, the kernel drops). Memory is
traced with ``tracemalloc`` (which sees the stream's loop thread too) and
must stay within

    (max_heaps + ring heaps + one reader batch + 2 held by the consumer) × heap size
    + the transport's own read-ahead + a constant,

far below the 12.5 MiB sent. The input itself (buffer, queued packets, pcap
file) is built before tracing starts.

* TCP, buffer, pcap and inproc are lossless: every heap arrives, exact, and
  ``worker_blocked`` shows the readers waited.
* UDP is not: datagrams the kernel dropped while the reader was paused are
  exactly those missing from ``packets`` (``/proc/net/udp``), and the heaps
  they belonged to are missing or incomplete — never wrong.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.heaps import Heap, HeapBase
from spead2.transports.base import BATCH_BYTES, BATCH_PACKETS
from spead2.transports.pcap import READ_BYTES
from tests.fuzz._udp import bound_udp_socket, kernel_drops
from tests.helpers import pcap_files as pf

N_HEAPS = 200
HEAP_SIZE = 65536
PACKET_SIZE = 8192
MAX_HEAPS = 4
RING_HEAPS = 4
SLEEP = 0.002
CONSTANT = 1 << 20


_BASE = np.arange(HEAP_SIZE, dtype=np.uint8) * np.uint8(3)  # wraps around, as intended


def pattern(cnt: int) -> np.ndarray:
    """Heap ``cnt``'s payload; uint8 arithmetic keeps the check's own memory to one heap."""
    return _BASE + np.uint8(cnt % 256)


def build_packets() -> tuple[list[list[bytes]], int]:
    """Packets of every heap (a heap's descriptors travel with it), and packets per heap."""
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "data", "", (HEAP_SIZE,), dtype="u1")
    heaps = []
    for cnt in range(1, N_HEAPS + 1):
        group["data"].value = pattern(cnt)
        heap = group.get_heap(descriptors="all", data="all")
        heaps.append(list(spead2.send.PacketGenerator(heap, cnt, PACKET_SIZE)))
    return heaps, max(len(p) for p in heaps)


@pytest.fixture(scope="module")
def traffic() -> tuple[list[list[bytes]], int]:
    return build_packets()


def make_stream() -> spead2.recv.Stream:
    return spead2.recv.Stream(
        spead2.ThreadPool(),
        spead2.recv.StreamConfig(max_heaps=MAX_HEAPS),
        spead2.recv.RingStreamConfig(heaps=RING_HEAPS),
    )


def bound(packets_per_heap: int, read_ahead: int, batch_bytes: int | None = None) -> int:
    """The memory bound of the module docstring (``batch_bytes``: the reader's batch in bytes)."""
    if batch_bytes is None:
        batch_heaps = BATCH_PACKETS // packets_per_heap + 1
    else:
        batch_heaps = batch_bytes // HEAP_SIZE + 1
    # The consumer holds the heap in hand, and the item value still views the previous one.
    held = 2
    return (MAX_HEAPS + RING_HEAPS + batch_heaps + held) * HEAP_SIZE + read_ahead + CONSTANT


def consume(
    stream: spead2.recv.Stream, done: Callable[[], bool] = lambda: False
) -> list[int]:
    """Take heaps slowly until the stream stops (or ``done()``); return the exact heaps' cnts.

    Each complete heap is checked against what was sent; incomplete ones are skipped.
    """
    group = spead2.ItemGroup()
    exact: list[int] = []
    while True:
        try:
            heap: HeapBase = stream.get_nowait()
        except spead2.Empty:
            if done():
                stream.stop()
            time.sleep(0.001)  # the scenario: a consumer that polls with get_nowait()
            continue
        except spead2.Stopped:
            return exact
        if isinstance(heap, Heap):
            value = group.update(heap)["data"].value
            assert np.array_equal(value, pattern(heap.cnt)), f"heap {heap.cnt} is wrong"
            exact.append(heap.cnt)
        del heap
        time.sleep(SLEEP)  # the scenario: a consumer slower than the sender


def traced_peak[T](run: Callable[[], T]) -> tuple[int, T]:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        result = run()
        return tracemalloc.get_traced_memory()[1] - base, result
    finally:
        tracemalloc.stop()


def check_lossless(stream: spead2.recv.Stream, exact: list[int], n_packets: int) -> None:
    assert exact == list(range(1, N_HEAPS + 1))
    stats = stream.stats
    assert stats.packets == n_packets
    assert stats.heaps == N_HEAPS and stats.incomplete_heaps_evicted == 0
    assert stats.worker_blocked > 0  # the readers really had to wait for the consumer


@pytest.mark.timeout(60)
def test_buffer_reader(traffic) -> None:
    heaps, per_heap = traffic
    data = b"".join(p for packets in heaps for p in packets)
    stream = make_stream()

    def run() -> list[int]:
        stream.add_buffer_reader(data)
        return consume(stream)

    peak, exact = traced_peak(run)
    check_lossless(stream, exact, sum(map(len, heaps)))
    # A reader of memory batches 2 MiB at a time, a larger share of these 12.5 MiB.
    assert peak < bound(per_heap, 0, BATCH_BYTES) < len(data) // 3


@pytest.mark.timeout(60)
def test_inproc_reader(traffic) -> None:
    heaps, per_heap = traffic
    queue = spead2.InprocQueue()
    for packets in heaps:
        for p in packets:
            queue.add_packet(p)
    queue.stop()
    stream = make_stream()

    def run() -> list[int]:
        stream.add_inproc_reader(queue)
        return consume(stream)

    peak, exact = traced_peak(run)
    check_lossless(stream, exact, sum(map(len, heaps)))
    assert peak < bound(per_heap, 0)


@pytest.mark.timeout(60)
def test_tcp_reader(traffic) -> None:
    heaps, per_heap = traffic
    data = b"".join(p for packets in heaps for p in packets)
    listener = socket.create_server(("127.0.0.1", 0))
    stream = make_stream()
    stream.add_tcp_reader(listener)

    def send() -> None:
        with socket.create_connection(listener.getsockname()) as conn:
            conn.sendall(data)

    def run() -> list[int]:
        sender = threading.Thread(target=send)
        sender.start()
        try:
            return consume(stream)
        finally:
            sender.join(30)

    peak, exact = traced_peak(run)
    listener.close()
    check_lossless(stream, exact, sum(map(len, heaps)))
    # The TCP reader reads up to one max_size packet ahead, beyond the bound.
    assert peak < bound(per_heap, spead2.recv.Stream.DEFAULT_TCP_MAX_SIZE)


@pytest.mark.timeout(60)
def test_pcap_reader(traffic, tmp_path: Path) -> None:
    heaps, per_heap = traffic
    path = tmp_path / "slow.pcap"
    pf.write_pcap(path, (pf.udp_frame(p) for packets in heaps for p in packets))
    stream = make_stream()

    def run() -> list[int]:
        stream.add_udp_pcap_file_reader(str(path))
        return consume(stream)

    peak, exact = traced_peak(run)
    check_lossless(stream, exact, sum(map(len, heaps)))
    # The pcap reader holds the batch it feeds and reads the next ahead, off the loop.
    assert peak < bound(per_heap, 2 * READ_BYTES + 2 * (PACKET_SIZE + 128))


@pytest.mark.timeout(60)
def test_udp_reader_losses_show_in_statistics(traffic) -> None:
    heaps, per_heap = traffic
    # A small kernel buffer, so that the slow consumer makes the kernel drop.
    rx = bound_udp_socket(256 * 1024)
    port = rx.getsockname()[1]
    stream = make_stream()
    stream.add_udp_reader(rx)
    rx.close()
    sent = 0
    finished = threading.Event()
    drops: int | None = None  # read while the socket is open: stop() closes it

    def send() -> None:
        nonlocal sent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for packets in heaps:
                for p in packets:
                    tx.sendto(p, ("127.0.0.1", port))
                    sent += 1
        finished.set()

    def accounted() -> bool:
        nonlocal drops
        if not finished.is_set():
            return False
        drops = kernel_drops(port)
        return stream.stats.packets + (drops or 0) >= sent

    def run() -> list[int]:
        sender = threading.Thread(target=send)
        sender.start()
        try:
            return consume(stream, accounted)
        finally:
            sender.join(30)

    peak, exact = traced_peak(run)
    stats = stream.stats
    if drops is None:
        pytest.skip("/proc/net/udp is not available: kernel drops cannot be counted")
    assert drops > 0, "the consumer was not slow enough to make the kernel drop"
    assert stats.packets + drops == sent
    assert stats.packets < sent
    assert len(exact) < N_HEAPS  # exact ones were checked against what was sent
    # Heaps that lost packets were evicted or flushed (dropped: contiguous_only), never delivered.
    assert stats.heaps == len(exact) + stats.incomplete_heaps_evicted + stats.incomplete_heaps_flushed
    assert peak < bound(per_heap, 0)
