"""Receive-stream behaviours that reference-based code relies on: statistics layout, back-pressure.

(The interop suite runs the same scenarios through the reference and compares:
tests/system/interop/test_interop_compat.py.)
"""

from __future__ import annotations

import threading
import time

import pytest

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
from spead2.recv import stream_stat_indices
from tests.helpers.waiting import wait_for, wait_for_async

TIMEOUT = 10.0
REFERENCE_NINE = [
    "heaps", "incomplete_heaps_evicted", "incomplete_heaps_flushed", "packets", "batches",
    "max_batch", "single_packet_heaps", "search_dist", "worker_blocked",
]


def single_packet_heaps(pool: spead2.ThreadPool, n: int, end: bool = False) -> list[bytes]:
    """``n`` one-packet heaps (and a stop heap if ``end``), as packets."""
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "x", shape=(), format=[("u", 32)])
    heaps = []
    for i in range(n):
        group["x"].value = i
        heaps.append(group.get_heap(descriptors="none", data="all"))
    if end:
        heaps.append(group.get_end())
    return [
        bytes(p) for i, heap in enumerate(heaps) for p in spead2.send.PacketGenerator(heap, i + 1, 1472)
    ]


# -- statistics layout ----------------------------------------------------------------


@pytest.mark.parametrize("stream_class", [spead2.recv.Stream, spead2.recv.asyncio.Stream])
def test_default_stats_are_the_reference_nine(pool, stream_class) -> None:
    assert [s.name for s in spead2.recv.StreamConfig().stats] == REFERENCE_NINE
    stream = stream_class(pool)
    assert list(stream.stats.keys()) == REFERENCE_NINE
    assert len(stream.stats) == 9
    stream.stop()


def test_custom_stats_get_the_reference_indices(pool) -> None:
    config = spead2.recv.StreamConfig()
    assert config.add_stat("mine") == 9
    assert config.add_stat("peak", spead2.recv.StreamStatConfig.Mode.MAXIMUM) == 10
    stream = spead2.recv.Stream(pool, config)
    stats = stream.stats
    assert len(stats) == 11
    assert list(stats.keys())[9:] == ["mine", "peak"]
    assert stats[9] == stats["mine"] == 0
    with pytest.raises(IndexError):
        stats[11]
    stream.stop()


def test_extra_statistics_are_counted_on_request(pool) -> None:
    """Registering ``invalid_packets`` / ``skipped_frames`` asks for our extra counters."""
    config = spead2.recv.StreamConfig()
    config.add_stat("mine")
    assert config.add_stat("invalid_packets") == 10
    stream = spead2.recv.Stream(pool, config)
    good = single_packet_heaps(pool, 2, end=True)
    stream.add_buffer_reader(good[0] + b"\x53\x04\x02\x06\x00\x00\x00\x01" + bytes(8))
    heaps = list(stream)
    stats = stream.stats
    assert len(heaps) == 1
    assert list(stats.keys()) == [*REFERENCE_NINE, "mine", "invalid_packets"]
    assert stats[10] == stats["invalid_packets"] == 1  # the cut packet at the end
    assert "skipped_frames" not in stats
    # Unrequested, the same input counts nothing visible and shifts nothing.
    plain = spead2.recv.Stream(pool)
    plain.add_buffer_reader(good[0] + b"\x53\x04\x02\x06\x00\x00\x00\x01" + bytes(8))
    assert len(list(plain)) == 1
    assert list(plain.stats.keys()) == REFERENCE_NINE


def test_chunk_stream_layout(pool) -> None:
    config = spead2.recv.StreamConfig()
    config.add_stat("mine")
    stream = spead2.recv.ChunkRingStream(
        pool, config,
        spead2.recv.ChunkStreamConfig(items=[spead2.HEAP_CNT_ID], place=lambda data: None),
        spead2.recv.ChunkRingbuffer(2), spead2.recv.ChunkRingbuffer(2),
    )
    assert list(stream.stats.keys()) == [*REFERENCE_NINE, "mine", "too_old_heaps", "rejected_heaps"]
    stream.stop()


# -- back-pressure ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["buffer", "inproc"])
def test_stop_with_a_blocked_reader_counts_what_it_had_in_hand(pool, kind) -> None:
    """10 heaps, a ring of 4, nobody consuming: stop() returns at once; stats count all 10."""
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=4))
    packets = single_packet_heaps(pool, 10)
    if kind == "buffer":
        stream.add_buffer_reader(b"".join(packets))
    else:
        queue = spead2.InprocQueue()
        stream.add_inproc_reader(queue)
        for packet in packets:
            queue.add_packet(packet)
    wait_for(lambda: stream.stats.worker_blocked >= 1)
    assert stream.ringbuffer.size() == 4
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 1.0
    stats = stream.stats
    assert stats.heaps == 10
    assert stats.packets == 10
    assert stats.worker_blocked == 1
    assert stream.ringbuffer.size() == 4
    if kind == "inproc":
        assert len(list(stream)) == 4  # those in the ring; the held ones were dropped by stop()
    else:
        # The buffer's end had already stopped the stream (and then nothing is dropped).
        assert len(list(stream)) == 10


def test_worker_blocked_counts_as_soon_as_the_reader_blocks(pool) -> None:
    """A ring that is merely full counts nothing; the next heap blocks the reader and counts."""
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    queue = spead2.InprocQueue()
    stream.add_inproc_reader(queue)
    packets = single_packet_heaps(pool, 3)
    queue.add_packet(packets[0])
    queue.add_packet(packets[1])
    wait_for(lambda: stream.ringbuffer.size() == 2)
    time.sleep(0.05)  # give a wrong count the chance to appear
    assert stream.stats.worker_blocked == 0
    queue.add_packet(packets[2])
    wait_for(lambda: stream.stats.worker_blocked == 1)  # code polls for exactly this
    assert [stream.get().cnt for _ in range(3)] == [1, 2, 3]
    stream.stop()


async def test_worker_blocked_polled_on_an_asyncio_stream(pool) -> None:
    stream = spead2.recv.asyncio.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=1))
    stream.add_buffer_reader(b"".join(single_packet_heaps(pool, 5, end=True)))
    await wait_for_async(lambda: stream.stats[stream_stat_indices.WORKER_BLOCKED], "the reader to block")
    assert [h.cnt async for h in stream] == [1, 2, 3, 4, 5]  # nothing lost


def test_consumer_thread_releases_held_heaps_in_order(pool) -> None:
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=3))
    stream.add_buffer_reader(b"".join(single_packet_heaps(pool, 200, end=True)))
    wait_for(lambda: stream.stats.worker_blocked >= 1)
    assert stream.ringbuffer.size() == 3
    got: list[int] = []
    consumer = threading.Thread(target=lambda: got.extend(h.cnt for h in stream))
    consumer.start()
    consumer.join(TIMEOUT)
    assert got == list(range(1, 201))
