"""Tests for send streams: BytesStream, InprocStream (sync and asyncio) and their machinery."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import inspect
import logging
import struct
import threading
import time
from collections.abc import Awaitable

import numpy as np
import pytest

import spead2
from spead2.protocols.flavour import Flavour
from spead2.send import asyncio as send_asyncio
from spead2.send._config import GroupMode, StreamConfig
from spead2.send._heap import Heap
from spead2.send._memory_streams import BytesStream, InprocStream
from spead2.send._stream import AsyncStream, HeapReference, HeapReferenceList, Stream
from tests.helpers.clock import FakeClock, use_fake_clock
from tests.helpers.waiting import wait_for

# ---------------------------------------------------------------------------
# Helpers


class RawItem:
    """Just enough of an Item for ``Heap.add_item``: an ID and a buffer."""

    def __init__(self, item_id: int, value: object) -> None:
        self.id = item_id
        self._value = value

    def to_buffer(self) -> object:
        return self._value

    def allow_immediate(self) -> bool:
        return True


def data_heap(n_bytes: int, item_id: int = 0x1000, flavour: Flavour | None = None) -> Heap:
    """A heap with one addressed item of ``n_bytes`` bytes (0..250 repeating)."""
    heap = Heap(flavour) if flavour is not None else Heap()
    if n_bytes:
        heap.add_item(RawItem(item_id, (np.arange(n_bytes) % 251).astype(np.uint8)))
    return heap


def parse_packets(data: bytes) -> list[tuple[int, int, int]]:
    """(cnt, payload offset, packet size) of every packet in a byte stream."""
    result = []
    pos = 0
    while pos < len(data):
        n_items = struct.unpack_from(">H", data, pos + 6)[0]
        bits = data[pos + 3] * 8
        mask = (1 << bits) - 1
        fields = {}
        for i in range(n_items):
            pointer = struct.unpack_from(">Q", data, pos + 8 + 8 * i)[0]
            fields.setdefault((pointer >> bits) & ((1 << (63 - bits)) - 1), pointer & mask)
        size = 8 + 8 * n_items + fields[4]
        result.append((fields[1], fields[3], size))
        pos += size
    return result


def cnts(data: bytes) -> list[int]:
    """The distinct heap cnts in a byte stream, in order of first appearance."""
    seen: list[int] = []
    for cnt, _, _ in parse_packets(data):
        if cnt not in seen:
            seen.append(cnt)
    return seen


def take_all(queue: spead2.InprocQueue) -> list[bytes]:
    packets, _ = queue._take(1 << 30)
    return packets


# ---------------------------------------------------------------------------
# Bytes on the wire


# The stop heap of PROTOCOL.md §13.4 with cnt 4.
STOP_HEAP_CNT_4 = bytes.fromhex(
    "5304030500000006"
    "8000010000000004"
    "8000020000000001"
    "8000030000000000"
    "8000040000000001"
    "8000060000000002"
    "0000000000000000"
    "00"
)


def test_bytes_stream_stop_heap(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool)
    heap = Heap()
    heap.add_end()
    assert stream.send_heap(heap, 4) == 57
    assert stream.getvalue() == STOP_HEAP_CNT_4
    assert stream.num_substreams == 1


def test_bytes_stream_items(pool: spead2.ThreadPool) -> None:
    """PROTOCOL.md §13.1: a data heap with real ``spead2.Item`` values."""
    heap = Heap()
    heap.add_item(spead2.Item(0x1600, "timestamp", "", (), format=[("u", 40)], value=0x0102030405))
    heap.add_item(spead2.Item(0x1601, "samples", "", (3,), dtype=">i2",
                              value=np.array([1, -2, 300], ">i2")))
    stream = BytesStream(pool)
    assert stream.send_heap(heap) == 62
    assert stream.getvalue() == bytes.fromhex(
        "5304030500000006"
        "8000010000000001"
        "8000020000000006"
        "8000030000000000"
        "8000040000000006"
        "8016000102030405"
        "0016010000000000"
        "0001fffe012c"
    )


@pytest.mark.parametrize(
    ("mode", "digest"),
    [
        (GroupMode.ROUND_ROBIN, "e8ce61c4fda0a34f4012d88b083aded2d1cb7d3ca006bfaca05c604103279e53"),
        (GroupMode.SERIAL, "0107ef15b80a8b5724b8dc6926f6a052776c82a4932b7bf2a3c094024f13226f"),
    ],
)
def test_group_bytes_match_reference(
    pool: spead2.ThreadPool, mode: GroupMode, digest: str
) -> None:
    """Byte-for-byte what spead2 4.5.1 sends for the same calls (SHA-256 of its output)."""
    stream = BytesStream(pool, StreamConfig(max_packet_size=100))
    stream.set_cnt_sequence(10, 3)
    heaps = [data_heap(n, 0x1000 + i) for i, n in enumerate([10, 200, 500, 0])]
    refs = [
        HeapReference(heaps[0]),
        HeapReference(heaps[1], cnt=77),
        HeapReference(heaps[2]),
        HeapReference(heaps[3]),
    ]
    assert stream.send_heaps(refs, mode) == 1383
    assert stream.send_heap(heaps[1]) == 368
    data = stream.getvalue()
    assert len(data) == 1751
    assert hashlib.sha256(data).hexdigest() == digest


def test_round_robin_interleaving(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool, StreamConfig(max_packet_size=100))
    # Heaps of 1, 3 and 2 packets (96-byte packets: 48 payload bytes, then 56).
    heaps = [data_heap(10), data_heap(150), data_heap(100)]
    refs = [HeapReference(h, cnt=i + 1) for i, h in enumerate(heaps)]
    total = stream.send_heaps(refs, GroupMode.ROUND_ROBIN)
    packets = parse_packets(stream.getvalue())
    assert [(cnt, offset) for cnt, offset, _ in packets] == [
        (1, 0), (2, 0), (3, 0),
        (2, 48), (3, 48),
        (2, 104),
    ]
    assert total == sum(size for _, _, size in packets)


def test_serial_order(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool, StreamConfig(max_packet_size=100))
    heaps = [data_heap(10), data_heap(150), data_heap(100)]
    refs = [HeapReference(h, cnt=i + 1) for i, h in enumerate(heaps)]
    stream.send_heaps(HeapReferenceList(refs), GroupMode.SERIAL)
    packets = parse_packets(stream.getvalue())
    assert [(cnt, offset) for cnt, offset, _ in packets] == [
        (1, 0), (2, 0), (2, 48), (2, 104), (3, 0), (3, 48),
    ]


def test_heap_reference_list_slices(pool: spead2.ThreadPool) -> None:
    refs = HeapReferenceList([HeapReference(data_heap(1), cnt=i) for i in range(5)])
    assert len(refs) == 5
    assert len(refs[::2]) == 3
    assert len(refs[7:]) == 0
    assert isinstance(refs[1:], HeapReferenceList)
    with pytest.raises(TypeError):
        refs[0]  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        list(refs)  # type: ignore[call-overload]
    stream = BytesStream(pool)
    stream.send_heaps(refs[::2], GroupMode.SERIAL)
    assert cnts(stream.getvalue()) == [0, 2, 4]


def test_heap_reference_list_captures_values(pool: spead2.ThreadPool) -> None:
    ref = HeapReference(data_heap(1), cnt=7)
    refs = HeapReferenceList([ref])
    ref.cnt = 9
    stream = BytesStream(pool)
    stream.send_heaps(refs, GroupMode.SERIAL)
    assert cnts(stream.getvalue()) == [7]


def test_heap_reference() -> None:
    heap = data_heap(1)
    ref = HeapReference(heap, cnt=-3, substream_index=1, rate=2)
    assert (ref.cnt, ref.substream_index, ref.rate) == (-3, 1, 2.0)
    assert ref.heap is heap
    ref.cnt = 2**50
    ref.substream_index = 4
    ref.rate = 0
    assert (ref.cnt, ref.substream_index, ref.rate) == (2**50, 4, 0.0)
    with pytest.raises(AttributeError):
        ref.heap = heap  # type: ignore[misc]
    with pytest.raises(TypeError):
        HeapReference(heap, 5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        HeapReference(heap, substream_index=-1)
    with pytest.raises(TypeError):
        HeapReference(heap, cnt=2**63)
    with pytest.raises(TypeError):
        HeapReference("not a heap")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ref.rate = "x"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        HeapReferenceList([heap])  # type: ignore[list-item]


# ---------------------------------------------------------------------------
# Heap cnts


def test_default_cnt_sequence(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool)
    for _ in range(3):
        stream.send_heap(data_heap(0))
    assert cnts(stream.getvalue()) == [1, 2, 3]


def test_set_cnt_sequence_and_explicit_cnts(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool)
    stream.set_cnt_sequence(5, 10)
    heap = data_heap(0)
    stream.send_heap(heap)
    stream.send_heap(heap, 1234)  # explicit: does not advance the sequence
    stream.send_heap(heap, -5)
    stream.send_heaps([HeapReference(heap), HeapReference(heap, cnt=0), HeapReference(heap)],
                      GroupMode.SERIAL)
    assert cnts(stream.getvalue()) == [5, 1234, 15, 25, 0, 35]


def test_cnt_wraps_per_flavour(pool: spead2.ThreadPool) -> None:
    """Observed with the reference: the counter is 64-bit, reduced modulo 2**HAB per heap."""
    stream = BytesStream(pool)
    heap40 = data_heap(0)
    heap48 = data_heap(0, flavour=Flavour(4, 64, 48, 0))
    stream.set_cnt_sequence(2**40 - 1, 1)
    stream.send_heap(heap40)
    stream.send_heap(heap40)
    stream.set_cnt_sequence(2**64 - 1, 2)
    stream.send_heap(heap40)
    stream.send_heap(heap40)
    stream.set_cnt_sequence(2**40 + 3, 1)
    stream.send_heap(heap40)
    stream.send_heap(heap48)
    assert [cnt for cnt, _, _ in parse_packets(stream.getvalue())] == [
        2**40 - 1, 0, 2**40 - 1, 1, 3, 2**40 + 4,
    ]


def test_set_cnt_sequence_errors(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool)
    with pytest.raises(ValueError, match="step cannot be 0"):
        stream.set_cnt_sequence(1, 0)
    with pytest.raises(TypeError):
        stream.set_cnt_sequence(-1, 1)
    with pytest.raises(TypeError):
        stream.set_cnt_sequence(1, -1)
    with pytest.raises(TypeError):
        stream.set_cnt_sequence(2**64, 1)
    stream.set_cnt_sequence(2**63, 1)  # fine: unsigned 64-bit
    stream.send_heap(data_heap(0))
    assert cnts(stream.getvalue()) == [0]


def test_cnt_out_of_range(pool: spead2.ThreadPool, caplog: pytest.LogCaptureFixture) -> None:
    stream = BytesStream(pool)
    heap = data_heap(0)
    with caplog.at_level(logging.WARNING, "spead2"), pytest.raises(OSError) as info:
        stream.send_heap(heap, 2**40)
    assert info.value.errno == errno.EINVAL
    assert "async_send_heap(s): dropping heap because cnt is out of range" in caplog.text
    with pytest.raises(TypeError):
        stream.send_heap(heap, 2**63)
    # 2**40 is fine for SPEAD-64-48.
    stream.send_heap(data_heap(0, flavour=Flavour(4, 64, 48, 0)), 2**40)
    # Failed heaps did not consume a cnt.
    stream.send_heap(heap)
    assert cnts(stream.getvalue()) == [2**40, 1]


def test_failed_group_sends_nothing(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool)
    heap = data_heap(0)
    with pytest.raises(OSError) as info:
        stream.send_heaps([HeapReference(heap), HeapReference(heap, cnt=2**41)], GroupMode.SERIAL)
    assert info.value.errno == errno.EINVAL
    assert stream.getvalue() == b""
    stream.send_heap(heap)
    assert cnts(stream.getvalue()) == [1]


def test_packet_size_too_small(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool, StreamConfig(max_packet_size=50))
    with pytest.raises(ValueError, match="packet size is too small"):
        stream.send_heap(data_heap(0))
    assert stream.getvalue() == b""


def test_send_heaps_errors(pool: spead2.ThreadPool, caplog: pytest.LogCaptureFixture) -> None:
    stream = BytesStream(pool)
    heap = data_heap(0)
    with caplog.at_level(logging.WARNING, "spead2"), pytest.raises(OSError) as info:
        stream.send_heaps([], GroupMode.ROUND_ROBIN)
    assert info.value.errno == errno.EINVAL
    assert "Empty heap group" in caplog.text
    with pytest.raises(BlockingIOError) as info2:
        stream.send_heaps([HeapReference(heap)] * 5, GroupMode.SERIAL)
    assert info2.value.errno == errno.EAGAIN
    assert "dropping heap because queue is full" in caplog.text
    with pytest.raises(TypeError):
        stream.send_heaps([HeapReference(heap)], 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        stream.send_heaps([heap], GroupMode.SERIAL)  # type: ignore[list-item]
    assert stream.send_heaps([HeapReference(heap)] * 4, GroupMode.SERIAL) == 4 * 49
    assert cnts(stream.getvalue()) == [1, 2, 3, 4]


# ---------------------------------------------------------------------------
# InprocStream


def test_inproc_substreams(pool: spead2.ThreadPool, caplog: pytest.LogCaptureFixture) -> None:
    queues = [spead2.InprocQueue(), spead2.InprocQueue()]
    stream = InprocStream(pool, queues)
    assert stream.num_substreams == 2
    assert stream.queues == queues
    assert stream.queues is not stream.queues
    heap = data_heap(3000)
    n = stream.send_heap(heap, substream_index=1)
    stream.send_heap(heap, 9, substream_index=0)
    with caplog.at_level(logging.WARNING, "spead2"), pytest.raises(OSError) as info:
        stream.send_heap(heap, substream_index=2)
    assert info.value.errno == errno.EINVAL
    assert "dropping heap because substream index is out of range" in caplog.text
    with pytest.raises(TypeError):
        stream.send_heap(heap, substream_index=-1)
    first, second = take_all(queues[0]), take_all(queues[1])
    assert [cnt for cnt, _, _ in parse_packets(b"".join(second))] == [1, 1, 1]
    assert [cnt for cnt, _, _ in parse_packets(b"".join(first))] == [9, 9, 9]
    assert sum(map(len, second)) == n
    # One packet per queue entry.
    assert [len(p) for p in second] == [size for _, _, size in parse_packets(b"".join(second))]


def test_inproc_constructor_errors(pool: spead2.ThreadPool) -> None:
    with pytest.raises(ValueError, match="queues is empty"):
        InprocStream(pool, [])
    with pytest.raises(TypeError):
        InprocStream(pool, ["queue"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        InprocStream("pool", [spead2.InprocQueue()])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BytesStream(pool, "config")  # type: ignore[arg-type]


def test_inproc_stopped_queue(pool: spead2.ThreadPool) -> None:
    queue = spead2.InprocQueue()
    stream = InprocStream(pool, [queue])
    queue.stop()
    with pytest.raises(OSError) as info:
        stream.send_heap(data_heap(10))
    assert info.value.errno == errno.ECANCELED


def test_config_is_copied(pool: spead2.ThreadPool) -> None:
    config = StreamConfig(max_packet_size=100)
    stream = BytesStream(pool, config)
    config.max_packet_size = 1472
    stream.send_heap(data_heap(200))
    assert len(parse_packets(stream.getvalue())) == 4


def test_class_hierarchy() -> None:
    assert issubclass(BytesStream, Stream)
    assert issubclass(InprocStream, Stream)
    assert issubclass(send_asyncio.InprocStream, Stream)
    assert not issubclass(send_asyncio.InprocStream, InprocStream)
    assert not hasattr(send_asyncio.InprocStream, "send_heap")
    assert not hasattr(send_asyncio.InprocStream, "send_heaps")
    assert not hasattr(InprocStream, "async_send_heap")


def test_concurrent_threads_do_not_interleave_heaps(pool: spead2.ThreadPool) -> None:
    stream = BytesStream(pool, StreamConfig(max_packet_size=64))
    heap = data_heap(2000)

    def work() -> None:
        for _ in range(20):
            stream.send_heap(heap)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    packets = parse_packets(stream.getvalue())
    order = [cnt for cnt, _, _ in packets]
    # Each heap's packets are contiguous and every cnt appears once.
    runs = [cnt for i, cnt in enumerate(order) if i == 0 or order[i - 1] != cnt]
    assert sorted(runs) == list(range(1, 61))


# ---------------------------------------------------------------------------
# Rate limiting (fake clock: nothing here depends on real time)


def test_rate_limited_sync(pool: spead2.ThreadPool) -> None:
    clock = FakeClock()
    stream = BytesStream(pool, StreamConfig(rate=1e6, burst_size=65536))
    use_fake_clock(stream, clock)
    heap = data_heap(100000)
    assert stream.send_heap(heap) == 102808
    # As measured on the reference (0.0665 s): one wait, for the first 65536+ bytes.
    assert len(clock.sleeps) == 1
    assert clock.now - 100.0 == pytest.approx(0.0665, abs=0.001)
    # Unlimited for one heap: no waiting...
    stream.send_heap(heap, rate=0)
    assert len(clock.sleeps) == 1
    # ... and a per-heap rate overrides the stream's.
    stream = BytesStream(pool, StreamConfig(rate=1e6, burst_size=65536))
    use_fake_clock(stream, clock)
    start = clock.now
    stream.send_heap(heap, rate=2e6)
    assert clock.now - start == pytest.approx(0.0331, abs=0.001)


def test_rate_debt_carries_over(pool: spead2.ThreadPool) -> None:
    """The unpaid tail of one heap delays the next, even across an unlimited heap."""
    clock = FakeClock()
    stream = BytesStream(pool, StreamConfig(rate=1e6, burst_size=65536))
    use_fake_clock(stream, clock)
    heap = data_heap(100000)
    stream.send_heap(heap)
    stream.send_heap(heap, rate=0)
    stream.send_heap(heap)
    # Two heaps' worth of rate-limited bytes (205616) is three full bursts
    # (each closed by the first packet reaching 65536 bytes) and a partial one.
    assert 3 * 65536 / 1e6 <= clock.now - 100.0 < 3 * (65536 + 1472) / 1e6


def test_burst_size_zero_paces_every_packet(pool: spead2.ThreadPool) -> None:
    clock = FakeClock()
    stream = BytesStream(pool, StreamConfig(rate=1000.0, burst_size=0, max_packet_size=100))
    use_fake_clock(stream, clock)
    heaps = [data_heap(150), data_heap(10)]
    stream.send_heaps([HeapReference(h) for h in heaps], GroupMode.ROUND_ROBIN)
    sizes = [size for _, _, size in parse_packets(stream.getvalue())]
    assert len(sizes) == 4
    # Each packet waits for the previous one's bytes at 1000 B/s.
    assert clock.sleeps == [pytest.approx(s / 1000.0) for s in sizes[:-1]]


def test_unlimited_stream_never_sleeps(pool: spead2.ThreadPool) -> None:
    clock = FakeClock()
    stream = BytesStream(pool, StreamConfig(burst_size=0))
    use_fake_clock(stream, clock)
    stream.send_heap(data_heap(100000))
    assert clock.sleeps == []


# ---------------------------------------------------------------------------
# asyncio streams


async def test_async_futures_and_cnts(pool: spead2.ThreadPool) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue])
    assert stream.queues == [queue]
    assert stream.num_substreams == 1
    heap = data_heap(3000)
    futures = [stream.async_send_heap(heap) for _ in range(4)]
    assert all(isinstance(f, asyncio.Future) for f in futures)
    results = await asyncio.gather(*futures)
    packets = take_all(queue)
    assert results == [sum(map(len, packets)) // 4] * 4
    assert cnts(b"".join(packets)) == [1, 2, 3, 4]


async def test_async_queue_full(pool: spead2.ThreadPool, caplog: pytest.LogCaptureFixture) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue], StreamConfig(max_heaps=2))
    heap = data_heap(10)
    ok = [stream.async_send_heap(heap), stream.async_send_heap(heap)]
    with caplog.at_level(logging.WARNING, "spead2"):
        full = stream.async_send_heap(heap)
        group_full = stream.async_send_heaps([HeapReference(heap)], GroupMode.SERIAL)
    assert "async_send_heap(s): dropping heap because queue is full" in caplog.text
    for future in (full, group_full):
        with pytest.raises(BlockingIOError) as info:
            await future
        assert info.value.errno == errno.EAGAIN
    assert await asyncio.gather(*ok) == [58, 58]
    # Room again; the failed heaps did not consume cnts.
    assert await stream.async_send_heap(heap) == 58
    assert cnts(b"".join(take_all(queue))) == [1, 2, 3]


async def test_async_errors(pool: spead2.ThreadPool, caplog: pytest.LogCaptureFixture) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue])
    heap = data_heap(10)
    with caplog.at_level(logging.WARNING, "spead2"):
        bad_cnt = stream.async_send_heap(heap, 2**40)
        bad_sub = stream.async_send_heap(heap, substream_index=1)
        empty = stream.async_send_heaps([], GroupMode.SERIAL)
    assert "Empty heap group" in caplog.text
    for future in (bad_cnt, bad_sub, empty):
        with pytest.raises(OSError) as info:
            await future
        assert info.value.errno == errno.EINVAL
    # Packet-size errors are raised by the call itself.
    small = send_asyncio.InprocStream(pool, [queue], StreamConfig(max_packet_size=50))
    with pytest.raises(ValueError, match="packet size is too small"):
        small.async_send_heap(heap)
    with pytest.raises(TypeError):
        stream.async_send_heaps([heap], GroupMode.SERIAL)  # type: ignore[list-item]
    assert await stream.async_send_heap(heap) == 58
    assert cnts(b"".join(take_all(queue))) == [1]
    # Transport errors fail the future; the stream carries on.
    queue.stop()
    with pytest.raises(OSError) as info:
        await stream.async_send_heap(heap)
    assert info.value.errno == errno.ECANCELED


async def test_async_round_robin(pool: spead2.ThreadPool) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue], StreamConfig(max_packet_size=100))
    heaps = [data_heap(10), data_heap(150), data_heap(100)]
    total = await stream.async_send_heaps(
        [HeapReference(h, cnt=i + 1) for i, h in enumerate(heaps)], GroupMode.ROUND_ROBIN
    )
    packets = parse_packets(b"".join(take_all(queue)))
    assert [cnt for cnt, _, _ in packets] == [1, 2, 3, 2, 3, 2]
    assert total == sum(size for _, _, size in packets)


async def test_async_yields_during_long_heaps(pool: spead2.ThreadPool) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue], StreamConfig(max_packet_size=64))
    future = stream.async_send_heap(data_heap(16 + 24 * 999))  # 1000 packets
    seen = []
    while not future.done():
        await asyncio.sleep(0)
        seen.append(len(queue))
    assert await future == 1000 * 64
    # Other tasks ran while the heap was being sent.
    assert any(0 < n < 1000 for n in seen)


async def test_async_rate_limited(pool: spead2.ThreadPool) -> None:
    clock = FakeClock()
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(
        pool, [queue], StreamConfig(rate=1e6, burst_size=65536)
    )
    use_fake_clock(stream, clock)
    assert await stream.async_send_heap(data_heap(100000)) == 102808
    assert len(clock.sleeps) == 1
    assert clock.now - 100.0 == pytest.approx(0.0665, abs=0.001)
    assert sum(map(len, take_all(queue))) == 102808


async def test_async_flush_waits_only_for_earlier_heaps(pool: spead2.ThreadPool) -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def gated_sleep(delay: float) -> None:
        await gate.wait()
        clock.now += delay

    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(
        pool, [queue], StreamConfig(rate=1000.0, burst_size=0)
    )
    use_fake_clock(stream, clock)
    stream._sleep = gated_sleep
    first = stream.async_send_heap(data_heap(10), rate=0)  # unlimited: never sleeps
    flush_first = asyncio.create_task(stream.async_flush())  # captures the queue now
    second = stream.async_send_heap(data_heap(3000))  # several packets: must sleep
    await first
    for _ in range(5):
        await asyncio.sleep(0)
    assert flush_first.done()
    assert not second.done()
    flush_second = asyncio.create_task(stream.async_flush())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not flush_second.done()
    gate.set()
    await flush_second
    assert second.done()
    # Nothing queued: returns at once.
    await stream.async_flush()
    assert inspect.iscoroutinefunction(stream.async_flush)


async def test_flush_on_loop_thread_sends_everything(pool: spead2.ThreadPool) -> None:
    clock = FakeClock()
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(
        pool, [queue], StreamConfig(rate=1e6, burst_size=1000, max_packet_size=1000)
    )
    use_fake_clock(stream, clock)
    futures = [stream.async_send_heap(data_heap(5000)) for _ in range(3)]
    stream.flush()  # blocks this (the loop's) thread until all are sent
    assert all(f.done() for f in futures)
    sizes = [f.result() for f in futures]
    assert sum(map(len, take_all(queue))) == sum(sizes)
    assert clock.sleeps  # the rate limit was honoured with the blocking sleep
    # The stream still works afterwards.
    assert await stream.async_send_heap(data_heap(10)) == 58
    assert cnts(b"".join(take_all(queue))) == [4]


async def test_flush_from_another_thread(pool: spead2.ThreadPool) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue], StreamConfig(max_packet_size=64))
    futures = [stream.async_send_heap(data_heap(16 + 24 * 499)) for _ in range(3)]
    await asyncio.to_thread(stream.flush)
    assert all(f.done() for f in futures)
    assert len(queue) == 1500


async def test_cancelled_future_heap_still_sent(pool: spead2.ThreadPool) -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(pool, [queue])
    future = stream.async_send_heap(data_heap(10))
    future.cancel()
    await stream.async_flush()
    assert len(queue) == 1


# A transport that makes the driver wait after every packet, as a network
# transport does under backpressure.


class WaitingTransport:
    num_substreams = 2

    def __init__(self) -> None:
        self.packets: list[tuple[int, bytes]] = []
        self.waits: list[asyncio.Future[None]] = []
        self.blocking = 0

    def send_packet(self, substream_index: int, packet: list[bytes | memoryview]) -> Awaitable[None]:
        self.packets.append((substream_index, b"".join(packet)))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waits.append(future)
        return future

    def send_packet_blocking(self, substream_index: int, packet: list[bytes | memoryview]) -> None:
        self.blocking += 1
        self.packets.append((substream_index, b"".join(packet)))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_transport_awaitables() -> None:
    transport = WaitingTransport()
    stream = AsyncStream(StreamConfig(max_packet_size=100), transport)
    assert stream.num_substreams == 2
    first = stream.async_send_heap(data_heap(150), substream_index=1)  # 3 packets
    second = stream.async_send_heap(data_heap(10))
    await settle()
    # One packet out, waiting for the transport before the next.
    assert len(transport.packets) == 1
    transport.waits[0].set_result(None)
    await settle()
    assert len(transport.packets) == 2
    # A transport error fails that group only; the next group is sent.
    transport.waits[1].set_exception(ConnectionResetError(errno.ECONNRESET, "reset"))
    await settle()
    with pytest.raises(ConnectionResetError):
        await first
    assert [sub for sub, _ in transport.packets] == [1, 1, 0]
    transport.waits[2].set_result(None)
    assert await second == 58


async def test_flush_uses_blocking_send() -> None:
    transport = WaitingTransport()
    stream = AsyncStream(StreamConfig(max_packet_size=100), transport)
    futures = [stream.async_send_heap(data_heap(150)), stream.async_send_heap(data_heap(150))]
    await settle()
    assert len(transport.packets) == 1
    stream.flush()
    assert transport.blocking == 5
    assert [f.result() for f in futures] == [sum(len(p) for _, p in transport.packets[:3])] * 2
    # The driver's pending wait on the transport no longer matters.
    transport.waits[0].set_result(None)
    await settle()
    assert len(transport.packets) == 6


# -- max_heaps slots (as the reference) ------------------------------------------------------


def _slow_config() -> StreamConfig:
    """~0.1 s per 20 KB heap: long enough for other calls to find the slots taken."""
    return StreamConfig(max_heaps=2, rate=2e5, burst_size=1000)


def _big_heap() -> Heap:
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "x", shape=(20000,), dtype=np.uint8)
    group["x"].value = np.zeros(20000, np.uint8)
    return group.get_heap(descriptors="all", data="all")


def test_send_heap_with_every_slot_taken_raises_at_once() -> None:
    """Two threads sending on a slow stream with max_heaps=2: a third send_heap fails, not waits."""
    stream = BytesStream(spead2.ThreadPool(), _slow_config())
    heap = _big_heap()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(stream.send_heap(heap))) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: stream._in_flight >= 2, "the senders to start")
    started = time.monotonic()
    with pytest.raises(IOError) as info:  # noqa: PT011 - the reference's type, exactly
        stream.send_heap(heap)
    assert time.monotonic() - started < 0.05  # at once, not after a heap's worth of waiting
    assert isinstance(info.value, BlockingIOError) and info.value.errno == errno.EAGAIN
    for t in threads:
        t.join(10)
    assert len(results) == 2 and all(isinstance(n, int) and n > 20000 for n in results)
    assert stream.send_heap(heap) > 20000  # the slots are free again


async def test_async_send_beyond_the_slots_and_active_count() -> None:
    queue = spead2.InprocQueue()
    stream = send_asyncio.InprocStream(spead2.ThreadPool(), [queue], _slow_config())
    heap = _big_heap()
    assert stream._active == 0
    futures = [stream.async_send_heap(heap) for _ in range(6)]
    assert stream._active == 6  # the reference's count: failing sends included
    await stream.async_flush()  # waits for every heap in flight
    assert all(f.done() for f in futures)
    errors = [f.exception() for f in futures]
    assert errors[:2] == [None, None]
    assert all(isinstance(e, BlockingIOError) and e.errno == errno.EAGAIN for e in errors[2:])
    await asyncio.sleep(0)  # done callbacks run
    assert stream._active == 0
    assert len(queue) > 2  # the two heaps' packets
