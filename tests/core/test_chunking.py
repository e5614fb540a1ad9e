"""Chunk placement core (spead2/protocols/chunking.py): API.md §2.9, sans-IO.

Expected behaviour (window back-fill, too-old and rejected counting, what is
written and marked for incomplete, orphaned, evicted heaps) was observed on
the reference spead2 4.5.1 with the same packets.
"""

from __future__ import annotations

import functools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spead2 import _log
from spead2.protocols.chunking import (
    NOT_READY,
    RELEASE_ALL,
    SOURCE_STOPPED,
    TOO_OLD,
    ChunkPlacer,
    chunk_stream_stat_configs,
)
from spead2.protocols.stats import StreamStatConfig, StreamStats
from spead2.recv._config import StreamConfig
from tests.helpers import packets as spead_packets

HAB = 48
TS = 0x1600  # timestamp item (immediate)
DATA = 0x1700  # addressed payload item
HEAP = 64  # payload bytes per heap
HPC = 4  # heaps per chunk

# The packets here are SPEAD-64-48.
imm = functools.partial(spead_packets.imm, hab=HAB)
addr = functools.partial(spead_packets.addr, hab=HAB)
packet = functools.partial(spead_packets.packet, hab=HAB)




def heap_packets(index, packet_payload=32, ts=True, cnt=None, size=HEAP, extra_items=()):
    """Packets of digitiser-like heap ``index``: timestamp ``index * HEAP``, payload bytes ``index + 1``."""
    cnt = index + 1 if cnt is None else cnt
    payload = bytes([(index + 1) % 256]) * size
    extra = [imm(TS, index * HEAP)] if ts else []
    extra += [*extra_items, addr(DATA, 0)]
    return [
        packet(cnt, size, off, payload[off : off + packet_payload], extra)
        for off in range(0, max(size, 1), packet_payload)
    ]


class FakeChunk:
    def __init__(self, data_size=HPC * HEAP, present_size=HPC, extra_size=None):
        self.data = bytearray(data_size)
        self.present = bytearray(present_size)
        self.extra = None if extra_size is None else bytearray(extra_size)
        self.chunk_id = -1


class FakeSource:
    """Hands out fresh chunks (or refuses while ``available`` is 0); records releases."""

    def __init__(self, available=None, **chunk_args):
        self.available = available
        self.chunk_args = chunk_args
        self.acquired = []
        self.chunks = {}
        self.released = []  # chunks, in release order
        self.tails = []
        self.stopped = False

    def acquire(self, chunk_id):
        if self.stopped:
            return SOURCE_STOPPED
        if self.available == 0:
            return NOT_READY
        if self.available is not None:
            self.available -= 1
        chunk = FakeChunk(**self.chunk_args)
        chunk.chunk_id = chunk_id
        self.acquired.append(chunk_id)
        self.chunks[chunk_id] = chunk
        return chunk

    def release(self, tail):
        self.tails.append(tail)
        for chunk_id in sorted(self.chunks):
            if chunk_id < tail:
                self.released.append(self.chunks.pop(chunk_id))

    @property
    def released_ids(self):
        return [c.chunk_id for c in self.released]


class Place:
    """A Python place function: heap ``ts // HEAP`` goes to chunk ``// HPC``, index ``% HPC``."""

    def __init__(self, max_extra=0, pp=1):
        self.extra = memoryview(bytearray(max_extra))
        self.calls = []
        self.stats = None
        self.override = None
        self.pp = pp  # present entries per heap

    def __call__(self, packet, items):
        self.calls.append(list(items))
        if self.override is not None:
            return self.override(packet, items)
        ts = items[1] if len(items) > 1 else -1
        if ts < 0:
            return (-1, 0, 0, 0, 0)
        hid = ts // HEAP
        return (hid // HPC, (hid % HPC) * self.pp, (hid % HPC) * HEAP, 0, 0)

    def take_stats(self):
        stats, self.stats = self.stats, None
        return stats


class ChunkCfg:
    def __init__(self, items=(1, TS, 2), max_chunks=2, max_heap_extra=0, pp=0):
        self.items = list(items)
        self.max_chunks = max_chunks
        self.max_heap_extra = max_heap_extra
        self.packet_presence_payload_size = pp


def make(max_chunks=2, config=None, source=None, place=None, items=(1, TS, 2), pp=0, max_extra=0):
    config = config or StreamConfig(allow_unsized_heaps=False)
    stat_configs = chunk_stream_stat_configs(config)
    stats = [0] * len(stat_configs)
    source = source or FakeSource()
    place = place or Place(max_extra)
    placer = ChunkPlacer(
        config, ChunkCfg(items, max_chunks, max_extra, pp), place, source, stats, _log.log_limited
    )
    return placer, source, place, lambda: StreamStats(stat_configs, stats)


def feed(placer, packets):
    for p in packets:
        placer.add_packet(p)


def heaps(*indices, **kwargs):
    return [p for i in indices for p in heap_packets(i, **kwargs)]


def present_of(chunk):
    return list(chunk.present)


def data_marks(chunk, size=HEAP):
    """First byte of each heap slot of a chunk."""
    return [chunk.data[i * size] for i in range(len(chunk.data) // size)]


# -- statistics layout ---------------------------------------------------------------


def test_stat_layout_core_custom_chunk_extras():
    config = StreamConfig()
    config.add_stat("mine")
    names = [s.name for s in chunk_stream_stat_configs(config)]
    assert names == [
        "heaps", "incomplete_heaps_evicted", "incomplete_heaps_flushed", "packets", "batches",
        "max_batch", "single_packet_heaps", "search_dist", "worker_blocked", "mine",
        "too_old_heaps", "rejected_heaps", "invalid_packets", "skipped_frames",
    ]


# -- the window ------------------------------------------------------------------------


def test_window_advances_and_backfills_up_to_window_size():
    # Reference: heaps 0..7 then 20 (chunk 5) with max_chunks=2 -> chunks 0,1 out, 4,5 obtained.
    placer, source, _, stats = make(max_chunks=2)
    feed(placer, heaps(0, 1, 2, 3, 4, 5, 6, 7, 20, 1, 12))
    placer.stop()
    assert source.acquired == [0, 1, 4, 5]
    assert source.released_ids == [0, 1, 4, 5]
    chunk0, chunk1, chunk4, chunk5 = source.released
    assert present_of(chunk0) == [1, 1, 1, 1] and data_marks(chunk0) == [1, 2, 3, 4]
    assert present_of(chunk1) == [1, 1, 1, 1] and data_marks(chunk1) == [5, 6, 7, 8]
    assert present_of(chunk4) == [0, 0, 0, 0]
    assert present_of(chunk5) == [1, 0, 0, 0] and data_marks(chunk5) == [21, 0, 0, 0]
    s = stats()
    assert s["too_old_heaps"] == 2  # heaps 1 and 12 (chunks 0 and 3)
    assert s["heaps"] == 11  # too-old heaps still count as heaps
    assert s["packets"] == 22
    assert s["rejected_heaps"] == 0


@pytest.mark.parametrize(
    "order, acquired",
    [
        ([20, 16, 8, 9, 24], [3, 4, 5, 6]),  # first heap in chunk 5: back-fill 3, 4
        ([4, 0, 8], [0, 1, 2]),  # first heap in chunk 1: back-fill only IDs >= 0
        ([8, 20], [0, 1, 2, 3, 4, 5]),
    ],
)
def test_window_first_heap_backfill(order, acquired):
    placer, source, _, stats = make(max_chunks=3)
    feed(placer, heaps(*order))
    placer.stop()
    assert source.acquired == acquired
    assert source.released_ids == acquired  # ascending
    assert stats()["too_old_heaps"] == (2 if order[0] == 20 else 0)


def test_far_jump_does_not_walk_the_gap():
    placer, source, _, _ = make(max_chunks=2)
    feed(placer, heaps(0))
    feed(placer, heaps(HPC * 10**12))
    assert source.acquired == [0, 10**12 - 1, 10**12]
    assert placer.window == (10**12 - 1, 10**12)


def test_negative_chunk_id_is_rejected_and_place_called_once_per_heap():
    placer, source, place, stats = make()
    feed(placer, heaps(3, ts=False) + heap_packets(4))
    assert len(place.calls) == 2  # two packets of the rejected heap, one call
    s = stats()
    assert s["rejected_heaps"] == 1
    assert s["heaps"] == 2
    assert source.acquired == [0, 1]  # heap 4 is in chunk 1


def test_items_from_first_packet():
    items = [1, 2, 3, 4, TS, DATA, 0x1601, 0x1602, 5]
    placer, _, place, _ = make(items=items)
    extra = [imm(TS, 10), imm(TS, 11), addr(DATA, 0), imm(0x1601, 0), imm(0x1602, 2**48 - 1)]
    feed(placer, [packet(1, 64, 0, b"a" * 64, extra), packet(2, 64, 0, b"a" * 64)])
    # cnt, heap length, payload offset, payload length, last TS wins, addressed -> -1,
    # immediate 0, full-width value, absent -> -1 (as observed on the reference).
    assert place.calls[0] == [1, 64, 0, 64, 11, -1, 0, 2**48 - 1, -1]
    assert place.calls[1] == [2, 64, 0, 64, -1, -1, -1, -1, -1]


def test_place_sees_the_whole_first_packet():
    seen = []
    place = Place()
    place.override = lambda pkt, items: (seen.append(bytes(pkt)), (0, 0, 0, 0, 0))[1]
    placer, _, _, _ = make(place=place)
    pkts = heap_packets(0)
    feed(placer, pkts)
    assert seen == [pkts[0]]


# -- what is written ---------------------------------------------------------------------


def test_incomplete_heap_written_but_not_marked():
    placer, source, _, stats = make()
    feed(placer, [heap_packets(1)[0]] + heaps(2))
    placer.stop()
    (chunk,) = source.released
    assert present_of(chunk) == [0, 0, 1, 0]
    assert bytes(chunk.data[HEAP : 2 * HEAP]) == b"\x02" * 32 + bytes(32)
    assert bytes(chunk.data[2 * HEAP : 3 * HEAP]) == b"\x03" * HEAP
    s = stats()
    assert (s["heaps"], s["incomplete_heaps_flushed"]) == (2, 1)


def test_heap_orphaned_by_window_move_is_too_old_when_it_completes():
    # Heap 0's first packet, then heap 20 moves the window past chunk 0, then heap 0's rest.
    placer, source, _, stats = make()
    first, second = heap_packets(0)
    feed(placer, [first] + heaps(20) + [second])
    placer.stop()
    chunk0 = source.released[0]
    assert chunk0.chunk_id == 0
    assert bytes(chunk0.data[:HEAP]) == b"\x01" * 32 + bytes(32)  # nothing written after it left
    assert present_of(chunk0) == [0, 0, 0, 0]
    assert stats()["too_old_heaps"] == 1


def test_orphaned_heap_left_incomplete_is_not_too_old():
    placer, _, _, stats = make()
    feed(placer, [heap_packets(0)[0]] + heaps(20))
    placer.stop()
    s = stats()
    assert s["too_old_heaps"] == 0
    assert s["incomplete_heaps_flushed"] == 1


def test_too_old_counted_at_placement_even_if_incomplete():
    placer, _, _, stats = make()
    feed(placer, heaps(20) + [heap_packets(1)[0]])
    placer.stop()
    s = stats()
    assert (s["too_old_heaps"], s["incomplete_heaps_flushed"], s["heaps"]) == (1, 1, 2)


def test_packet_presence_marks_each_packet():
    place = Place(pp=2)
    placer, source, _, _ = make(place=place, pp=32, source=FakeSource(present_size=2 * HPC))
    feed(placer, [heap_packets(1)[1]] + heaps(2) + [heap_packets(3)[0]])
    placer.stop()
    (chunk,) = source.released
    # heap 1's second packet cannot start a heap in order: dropped (no mark).
    assert present_of(chunk) == [0, 0, 0, 0, 1, 1, 1, 0]


def test_extra_bytes_copied():
    place = Place(max_extra=8)

    def override(pkt, items):
        hid = items[1] // HEAP
        place.extra[:4] = bytes([hid, hid, hid, hid])
        return (hid // HPC, hid % HPC, (hid % HPC) * HEAP, 4 * (hid % HPC), 4)

    place.override = override
    placer, source, _, stats = make(place=place, max_extra=8)
    source.chunk_args = dict(extra_size=16)
    feed(placer, heaps(1, 2))
    placer.stop()
    (chunk,) = source.released
    assert bytes(chunk.extra) == bytes([0] * 4 + [1] * 4 + [2] * 4 + [0] * 4)
    assert stats()["rejected_heaps"] == 0


@pytest.mark.parametrize(
    "placement, chunk_args",
    [
        ((0, 0, 3 * HEAP + 1, 0, 0), {}),  # payload would overflow data
        ((0, HPC, 0, 0, 0), {}),  # heap_index beyond present
        ((0, 0, 0, 0, 9), dict(extra_size=16)),  # more than max_heap_extra
        ((0, 0, 0, 12, 8), dict(extra_size=16)),  # beyond chunk.extra
        ((0, 0, 0, 0, 4), {}),  # chunk has no extra
        ((0, 2**64 - 1, 2**64 - 1, 0, 0), {}),  # garbage from a C callback
    ],
)
def test_out_of_bounds_placement_is_rejected(placement, chunk_args, caplog):
    _log._limiters.clear()
    place = Place(max_extra=8)
    place.override = lambda pkt, items: placement
    placer, source, _, stats = make(place=place, max_extra=8)
    source.chunk_args = chunk_args
    with caplog.at_level(logging.WARNING, logger="spead2"):
        feed(placer, heaps(0))
    placer.stop()
    (chunk,) = source.released
    assert not any(chunk.data) and not any(chunk.present)
    assert stats()["rejected_heaps"] == 1
    assert "rejected_heaps" in caplog.text


def test_packet_presence_bounds_use_the_last_packet():
    place = Place()
    place.override = lambda pkt, items: (0, HPC - 1, 0, 0, 0)  # needs HPC - 1 + 2 entries
    placer, source, _, stats = make(place=place, pp=32)
    feed(placer, heaps(0))
    assert stats()["rejected_heaps"] == 1


def test_unsized_packets_are_rejected():
    placer, source, place, stats = make()
    feed(placer, [packet(1, None, 0, b"x" * 32, [imm(TS, 0)])])
    s = stats()
    assert (s["packets"], s["heaps"]) == (1, 0)
    assert place.calls == [] and source.acquired == []


def test_invalid_packet_counted():
    placer, _, _, stats = make()
    feed(placer, [b"\x00" * 20])
    assert stats()["invalid_packets"] == 1
    assert stats()["packets"] == 0


def test_out_of_order_heaps_complete_and_ignore_duplicates():
    placer, source, place, stats = make(config=StreamConfig(allow_out_of_order=True))
    a, b = heap_packets(1)
    c, d = heap_packets(2)
    feed(placer, [b, b, a, d, c, c])
    placer.stop()
    (chunk,) = source.released
    assert present_of(chunk) == [0, 1, 1, 0]
    # The duplicate of b is ignored; the late duplicate of c, after heap 2
    # completed, starts a new heap (placed again, then flushed incomplete).
    assert len(place.calls) == 3
    s = stats()
    assert (s["heaps"], s["incomplete_heaps_flushed"]) == (3, 1)


def test_in_order_mode_drops_out_of_order_packets():
    placer, source, _, stats = make()
    a, b = heap_packets(1)
    feed(placer, [b, a] + heap_packets(2)[::-1])
    placer.stop()
    (chunk,) = source.released
    assert present_of(chunk) == [0, 0, 0, 0]
    assert stats()["incomplete_heaps_flushed"] == 2


def test_max_heaps_eviction():
    placer, source, _, stats = make(config=StreamConfig(max_heaps=1))
    feed(placer, [heap_packets(1)[0]] + heaps(2))
    placer.stop()
    (chunk,) = source.released
    assert present_of(chunk) == [0, 0, 1, 0]
    s = stats()
    assert (s["incomplete_heaps_evicted"], s["heaps"]) == (1, 2)


def test_single_packet_heap():
    placer, source, _, stats = make()
    feed(placer, heap_packets(5, packet_payload=HEAP))
    placer.stop()
    assert present_of(source.released[-1]) == [0, 1, 0, 0]
    assert stats()["single_packet_heaps"] == 1


def test_zero_length_heap_is_marked():
    placer, source, _, _ = make()
    feed(placer, heap_packets(1, size=0))
    placer.stop()
    assert present_of(source.released[0]) == [0, 1, 0, 0]


def test_item_address_beyond_heap_never_completes():
    placer, source, _, stats = make()
    extra = [imm(TS, HEAP), addr(DATA, 100)]
    feed(placer, [packet(2, 64, 0, b"\x07" * 32, extra), packet(2, 64, 32, b"\x07" * 32, extra)])
    placer.stop()
    assert present_of(source.released[0]) == [0, 0, 0, 0]
    assert stats()["incomplete_heaps_flushed"] == 1


def test_stop_item_stops_and_discards_its_heap():
    placer, source, place, stats = make()
    stop = packet(100, 0, 0, b"", [imm(6, 2)])
    assert all(placer.add_packet(p) for p in heaps(1))
    assert placer.add_packet(stop) is False
    assert placer.add_packet(heap_packets(2)[0]) is False
    assert placer.stopped
    assert source.released_ids == [0]
    assert present_of(source.released[0]) == [0, 1, 0, 0]
    s = stats()
    assert (s["heaps"], s["single_packet_heaps"]) == (1, 1)
    # Place sees the stop heap (as with the reference), is not obeyed, and
    # its refusal counts in rejected_heaps.
    assert len(place.calls) == 2
    assert s["rejected_heaps"] == 1


def test_stop_item_in_later_packet_flushes_other_heaps():
    placer, _, _, stats = make()
    feed(placer, [heap_packets(1)[0]])
    stop_extra = [imm(TS, 2 * HEAP), imm(6, 2), addr(DATA, 0)]
    first = packet(3, 64, 0, b"\x03" * 32, stop_extra[:1] + stop_extra[2:])
    assert placer.add_packet(first)
    assert placer.add_packet(packet(3, 64, 32, b"\x03" * 32, stop_extra)) is False
    s = stats()
    assert s["incomplete_heaps_flushed"] == 1  # heap 1; heap 3 (the stop heap) is discarded
    assert s["heaps"] == 1


# -- blocking on the source ------------------------------------------------------------


def test_blocked_source_holds_and_queues_packets_then_resumes():
    source = FakeSource(available=1)
    placer, _, place, stats = make(source=source)
    feed(placer, heaps(0, 1, 4))  # heap 4 needs chunk 1: none available
    assert placer.blocked
    pending = heaps(5, 8)  # arrive while blocked (heap 8 -> chunk 2)
    data = [bytearray(p) for p in pending]
    feed(placer, data)
    for buf in data:
        buf[:] = bytes(len(buf))  # the reader reuses its buffer: the queue must have copied
    calls_before = len(place.calls)
    assert placer.resume() is True and placer.blocked  # still nothing
    assert len(place.calls) == calls_before  # place is not called again for the held heap
    source.available = 1
    assert placer.resume() is True
    assert placer.blocked  # heap 8 needs chunk 2
    source.available = None
    assert placer.resume() is True and not placer.blocked
    placer.stop()
    assert source.released_ids == [0, 1, 2]
    assert present_of(source.released[1]) == [1, 1, 0, 0]
    assert present_of(source.released[2]) == [1, 0, 0, 0]
    assert len(place.calls) == 5
    assert stats()["heaps"] == 5


def test_stop_while_blocked_discards_held_packets():
    source = FakeSource(available=0)
    placer, _, _, stats = make(source=source)
    feed(placer, heaps(0, 1))
    assert placer.blocked
    placer.stop()
    assert not placer.blocked
    assert source.tails[-1] == RELEASE_ALL
    assert stats()["heaps"] == 0


def test_source_stopped_stops_the_placer():
    source = FakeSource()
    source.stopped = True
    placer, _, _, _ = make(source=source)
    assert placer.add_packet(heap_packets(0)[0]) is False
    assert placer.stopped


def test_source_too_old_skips_that_chunk():
    class GroupLike(FakeSource):
        def acquire(self, chunk_id):
            return TOO_OLD if chunk_id == 0 else super().acquire(chunk_id)

    placer, source, _, stats = make(source=GroupLike())
    feed(placer, heaps(0, 4))
    assert source.acquired == [1]
    assert stats()["too_old_heaps"] == 1


def test_flush_until_orphans_heaps_and_releases():
    placer, source, _, stats = make(max_chunks=2)
    feed(placer, heaps(0) + [heap_packets(4)[0]])
    placer.flush_until(2)
    assert source.released_ids == [0, 1]
    assert placer.window == (2, 1)
    feed(placer, [heap_packets(4)[1]])  # completes after its chunk left
    assert stats()["too_old_heaps"] == 1
    feed(placer, heaps(1))  # chunk 0: too old now
    assert stats()["too_old_heaps"] == 2
    feed(placer, heaps(9))  # chunk 2: acquired afresh from 2
    assert source.acquired == [0, 1, 2]


# -- statistics from the callback ------------------------------------------------------


def test_place_stats_merged_per_batch():
    config = StreamConfig(allow_unsized_heaps=False)
    config.add_stat("counter")
    config.add_stat("peak", StreamStatConfig.Mode.MAXIMUM)
    placer, _, place, stats = make(config=config)
    feed(placer, heaps(0))
    n = len(chunk_stream_stat_configs(config))
    place.stats = [0] * n
    place.stats[9] = 3
    place.stats[10] = 7
    placer.merge_place_stats()
    place.stats = [0] * n
    place.stats[9] = 2
    place.stats[10] = 5
    placer.merge_place_stats()
    s = stats()
    assert (s["counter"], s["peak"]) == (5, 7)


# -- properties --------------------------------------------------------------------------


@st.composite
def arrivals(draw):
    """Heaps (index, packets kept) in a random order, some packets lost, some duplicated."""
    indices = draw(st.lists(st.integers(0, 40), min_size=1, max_size=25, unique=True))
    order = draw(st.permutations(indices))
    result = []
    for index in order:
        keep = draw(st.lists(st.booleans(), min_size=2, max_size=2))
        result.append((index, keep))
    return result


@settings(max_examples=150, deadline=None)
@given(arrivals(), st.integers(1, 4), st.booleans())
def test_property_every_heap_lands_in_place(arrivals, max_chunks, out_of_order):
    config = StreamConfig(allow_unsized_heaps=False, allow_out_of_order=out_of_order, max_heaps=64)
    placer, source, _, stats = make(max_chunks=max_chunks, config=config)
    complete = set()
    for index, keep in arrivals:
        pkts = heap_packets(index)
        sent = [p for p, k in zip(pkts, keep, strict=True) if k]
        feed(placer, sent)
        if all(keep):
            complete.add(index)
    placer.stop()
    ids = source.released_ids
    assert ids == sorted(set(ids))  # ascending, each chunk once
    assert stats()["packets"] == sum(sum(keep) for _, keep in arrivals)
    marked = set()
    for chunk in source.released:
        for slot in range(HPC):
            index = chunk.chunk_id * HPC + slot
            if chunk.present[slot]:
                marked.add(index)
                assert bytes(chunk.data[slot * HEAP : (slot + 1) * HEAP]) == bytes([index + 1]) * HEAP
            else:
                # Only bytes of this heap, or nothing, in its slot.
                assert set(chunk.data[slot * HEAP : (slot + 1) * HEAP]) <= {0, index + 1}
    assert marked <= complete
    s = stats()
    # Every complete heap is either marked, or counted as too old.
    assert len(complete) - len(marked) <= s["too_old_heaps"]
    assert s["heaps"] == len([1 for _, keep in arrivals if keep[0] or out_of_order and any(keep)])
