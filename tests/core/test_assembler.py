"""Heap assembly (spead2/protocols/assembler.py): API.md §2.7, PROTOCOL.md §9.2."""

from __future__ import annotations

import logging
import tracemalloc
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spead2.protocols import assembler as assembler_module
from spead2.protocols import live_heaps
from spead2.protocols.assembler import MAX_RANGES, HeapAssembler, stream_stat_configs
from spead2.protocols.flavour import Flavour
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.recv._config import RingStreamConfig, StreamConfig
from tests.helpers.assembler import Rig, payload_of
from tests.helpers.packets import ITEM, START, STOP, addr, imm, packet, raw_packet, split


def incomplete_ring(keep=True):
    return RingStreamConfig(contiguous_only=False, incomplete_keep_payload_ranges=keep)


def item_values(heap):
    return [(item.id, bytes(item)) for item in heap.get_items()]


pytestmark = pytest.mark.usefixtures("fresh_log_limits")


# -- statistics layout ------------------------------------------------------------


def test_stat_configs_core_custom_then_invalid_packets():
    config = StreamConfig()
    config.add_stat("mine")
    names = [s.name for s in stream_stat_configs(config)]
    assert names[:9] == [
        "heaps", "incomplete_heaps_evicted", "incomplete_heaps_flushed", "packets", "batches",
        "max_batch", "single_packet_heaps", "search_dist", "worker_blocked",
    ]
    assert names[9:] == ["mine", "invalid_packets", "skipped_frames"]


def test_stats_list_too_short_rejected():
    with pytest.raises(ValueError, match="stats"):
        HeapAssembler(StreamConfig(), RingStreamConfig(), lambda h: None, [0] * 9)


# -- complete heaps ---------------------------------------------------------------


def test_single_packet_heap():
    rig = Rig()
    assert rig.feed(packet(5, 3, 0, b"abc", [addr(ITEM, 0), imm(ITEM + 1, 9)])) == [True]
    [heap] = rig.heaps
    assert isinstance(heap, Heap)
    assert heap.cnt == 5
    assert heap.flavour == Flavour(4, 64, 40, 0)
    assert item_values(heap) == [(ITEM, b"abc"), (ITEM + 1, b"\x00\x00\x00\x00\x09")]
    assert rig.nonzero_stats() == {"heaps": 1, "packets": 1, "single_packet_heaps": 1}


def test_flavour_has_packet_address_bits_and_stream_bug_compat():
    rig = Rig(bug_compat=5)
    rig.feed(packet(1, 2, 0, b"ab", [addr(ITEM, 0, 48)], hab=48))
    assert rig.heaps[0].flavour == Flavour(4, 64, 48, 5)


def test_multi_packet_heap_in_order():
    rig = Rig()
    payload = bytes(range(100))
    rig.feed(*split(1, payload, [10, 55]))
    [heap] = rig.heaps
    assert payload_of(heap) == payload
    assert item_values(heap) == [(ITEM, payload)]
    assert rig.nonzero_stats() == {"heaps": 1, "packets": 3}


def test_heap_pointers_exclude_per_packet_fields():
    rig = Rig()
    rig.feed(*split(1, b"0123456789", [4], extra=(addr(ITEM, 0), START)))
    heap = rig.heaps[0]
    assert heap.is_start_of_stream()
    assert sorted(heap._pointers) == sorted([addr(ITEM, 0), START])


def test_heaps_delivered_in_completion_order():
    rig = Rig(max_heaps=4)
    a = split(1, b"aaaa", [2])
    b = split(2, b"bbbb", [2])
    rig.feed(a[0], b[0], b[1], a[1])
    assert [h.cnt for h in rig.heaps] == [2, 1]


def test_cnt_zero_allowed():
    rig = Rig()
    rig.feed(packet(0, 1, 0, b"x"))
    assert rig.heaps[0].cnt == 0


def test_same_cnt_after_completion_starts_new_heap():
    rig = Rig(ring=incomplete_ring())
    rig.feed(*split(1, b"abcdef", [3]), packet(1, 6, 0, b"xyz"))
    rig.asm.flush(True)
    assert [type(h) for h in rig.heaps] == [Heap, IncompleteHeap]
    assert rig.heaps[1].received_length == 3


def test_packet_joining_live_heap_is_not_a_separate_single_packet_heap():
    # The reference would deliver the second packet as a heap of its own and
    # leave the first dangling; here it joins the live heap with its cnt.
    rig = Rig()
    rig.feed(packet(1, 4, 0, b"", [addr(ITEM, 0)]), packet(1, 4, 0, b"abcd"))
    [heap] = rig.heaps
    assert item_values(heap) == [(ITEM, b"abcd")]


def test_zero_length_heap():
    rig = Rig()
    rig.feed(packet(3, 0, 0, b""))
    [heap] = rig.heaps
    assert payload_of(heap) == b""
    assert rig.stats.single_packet_heaps == 1


def test_zero_length_packets_inside_heap():
    rig = Rig()
    rig.feed(packet(1, 4, 0, b"", [addr(ITEM, 0)]), packet(1, 4, 0, b"ab"), packet(1, 4, 2, b""),
             packet(1, 4, 2, b"cd"))
    assert payload_of(rig.heaps[0]) == b"abcd"


# -- in-order mode ------------------------------------------------------------------


def test_out_of_order_packet_rejected_with_warning(caplog):
    rig = Rig(ring=incomplete_ring())
    p = split(1, bytes(30), [10, 20])
    with caplog.at_level(logging.WARNING, logger="spead2"):
        rig.feed(p[0], p[2], p[1])
    assert rig.stats.packets == 3
    assert not any(isinstance(h, Heap) for h in rig.heaps)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "packet rejected because it is out-of-order in the heap (you might need to set "
        "allow_out_of_order to true in the stream config)"
    ]
    # The heap got [0, 10) and then [10, 20): [20, 30) came too early.
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert (heap.received_length, heap.payload_ranges) == (20, [(0, 20)])


def test_duplicate_rejected_in_order():
    rig = Rig()
    p = split(1, bytes(20), [10])
    rig.feed(p[0], p[0], p[1])
    assert len(rig.heaps) == 1
    assert rig.stats.packets == 3


def test_heap_cannot_start_mid_way_in_order(caplog):
    rig = Rig(ring=incomplete_ring())
    p = split(1, bytes(20), [10])
    with caplog.at_level(logging.INFO, logger="spead2"):
        rig.feed(p[1])
    rig.asm.flush(True)
    assert rig.heaps == []
    assert rig.stats.packets == 1
    assert rig.stats.heaps == 0
    assert caplog.records == []


# -- out-of-order mode ----------------------------------------------------------------


def test_out_of_order_assembly():
    rig = Rig(allow_out_of_order=True)
    payload = bytes(range(30))
    p = split(1, payload, [10, 20])
    rig.feed(p[2], p[0], p[2], p[1])
    [heap] = rig.heaps
    assert payload_of(heap) == payload
    assert item_values(heap) == [(ITEM, payload)]
    assert rig.stats.packets == 4


def test_partial_overlap_contributes_new_bytes():
    rig = Rig(allow_out_of_order=True)
    payload = bytes(range(15))
    rig.feed(packet(1, 15, 0, payload[:10], [addr(ITEM, 0)]), packet(1, 15, 5, payload[5:]))
    assert payload_of(rig.heaps[0]) == payload


def test_duplicate_ignored_out_of_order():
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, b"abc", [addr(ITEM, 0)]), packet(1, 10, 0, b"abc", [imm(ITEM + 1, 1)]))
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert heap.received_length == 3
    # The duplicate's pointers were ignored along with it.
    assert heap.get_items() == []


def test_payload_ranges_merged():
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    rig.feed(packet(1, 100, 50, bytes(10)), packet(1, 100, 10, bytes(10)), packet(1, 100, 20, bytes(5)),
             packet(1, 100, 70, bytes(30)), packet(1, 100, 60, bytes(10)))
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert heap.payload_ranges == [(10, 25), (50, 100)]
    assert heap.received_length == 65
    assert heap.heap_length == 100


def test_payload_ranges_empty_unless_kept():
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring(keep=False))
    rig.feed(packet(1, 100, 50, bytes(10)))
    rig.asm.flush(True)
    assert rig.heaps[0].payload_ranges == []
    assert rig.heaps[0].received_length == 10


def test_far_ahead_packet_held_aside_then_placed():
    # With no lookahead slack every packet beyond the data goes to the side
    # list; the assembled payload must still be exact.
    rig = Rig(allow_out_of_order=True)
    payload = bytes(range(200))
    p = split(1, payload, [20, 40, 100, 150])
    with mock.patch.object(assembler_module, "LOOKAHEAD_SLACK", 0):
        rig.feed(p[4], p[3], p[0], p[2], p[1])
    assert payload_of(rig.heaps[0]) == payload


def test_range_count_is_capped():
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    with mock.patch.object(live_heaps, "MAX_RANGES", 8):
        # Every other byte: each packet opens a new range.
        rig.feed(*[packet(1, 100, 2 * i, b"x") for i in range(10)])
        # A packet that merges ranges is still welcome.
        rig.feed(packet(1, 100, 1, b"y"))
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert heap.payload_ranges == [(0, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15)]
    assert MAX_RANGES >= 1024


# -- eviction and substreams ------------------------------------------------------------


def test_oldest_created_heap_evicted():
    rig = Rig(max_heaps=2, ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 10, 0, bytes(5)), packet(1, 10, 5, bytes(2)),
             packet(3, 10, 0, bytes(5)))
    # Heap 1 was updated most recently but created first.
    assert [(type(h), h.cnt, h.received_length) for h in rig.heaps] == [(IncompleteHeap, 1, 7)]
    assert rig.nonzero_stats() == {"heaps": 1, "incomplete_heaps_evicted": 1, "packets": 4}


def test_evicted_heap_dropped_with_warning(caplog):
    rig = Rig(max_heaps=1)
    with caplog.at_level(logging.WARNING, logger="spead2"):
        rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 10, 0, bytes(5)))
    assert rig.heaps == []
    assert "dropped incomplete heap 1 (5/10 bytes of payload)" in caplog.text
    assert rig.stats.incomplete_heaps_evicted == 1
    assert rig.stats.heaps == 1


def test_substreams_have_their_own_window():
    rig = Rig(max_heaps=1, substreams=2, ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 10, 0, bytes(5)), packet(3, 10, 0, bytes(2)))
    # cnt 3 shares substream 1 with cnt 1 only.
    assert [h.cnt for h in rig.heaps] == [1]
    rig.feed(packet(4, 10, 0, bytes(5)))
    assert [h.cnt for h in rig.heaps] == [1, 2]
    assert rig.asm.live_heaps == 2


def test_single_packet_heap_does_not_evict():
    rig = Rig(max_heaps=1, ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 3, 0, b"abc"))
    assert [type(h) for h in rig.heaps] == [Heap]
    assert rig.asm.live_heaps == 1


# -- unsized heaps --------------------------------------------------------------------------


def test_unsized_heap_completes_on_eviction():
    rig = Rig(max_heaps=1)
    rig.feed(*split(1, b"abcdefgh", [3], sized=False))
    assert rig.heaps == []
    rig.feed(packet(2, 10, 0, bytes(5)))
    [heap] = rig.heaps
    assert isinstance(heap, Heap)
    assert item_values(heap) == [(ITEM, b"abcdefgh")]
    assert rig.stats.incomplete_heaps_evicted == 1


def test_unsized_heap_completes_on_flush():
    rig = Rig()
    rig.feed(*split(1, b"abcdefgh", [3], sized=False))
    rig.asm.flush(True)
    assert payload_of(rig.heaps[0]) == b"abcdefgh"
    assert rig.nonzero_stats() == {"heaps": 1, "incomplete_heaps_flushed": 1, "packets": 2}


@pytest.mark.parametrize("out_of_order", [False, True])
def test_empty_unsized_heap_flushed_as_heap(out_of_order):
    rig = Rig(allow_out_of_order=out_of_order)
    rig.feed(packet(1, None, 0, b""))
    rig.asm.flush(True)
    assert payload_of(rig.heaps[0]) == b""


def test_unsized_heap_with_gap_is_incomplete():
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    rig.feed(packet(1, None, 0, bytes(5)), packet(1, None, 7, bytes(5)))
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert isinstance(heap, IncompleteHeap)
    assert (heap.heap_length, heap.received_length, heap.payload_ranges) == (-1, 10, [(0, 5), (7, 12)])


def test_unsized_heap_with_gap_dropped_when_contiguous_only(caplog):
    rig = Rig(allow_out_of_order=True)
    with caplog.at_level(logging.WARNING, logger="spead2"):
        rig.feed(packet(1, None, 3, bytes(5)), packet(1, None, 0, bytes(2)))
        rig.asm.flush(True)
    assert rig.heaps == []
    assert "dropped incomplete heap 1 (7/-1 bytes of payload)" in caplog.text


def test_unsized_heaps_rejected_when_disallowed(caplog):
    rig = Rig(allow_unsized_heaps=False)
    with caplog.at_level(logging.INFO, logger="spead2"):
        rig.feed(packet(1, None, 0, b"abc"))
    rig.asm.flush(True)
    assert rig.heaps == []
    assert "packet rejected because it has no HEAP_LEN" in caplog.text
    # As in the reference, it passed packet parsing, so it counts in packets.
    assert rig.nonzero_stats() == {"packets": 1}


def test_unsized_heap_learns_its_length():
    rig = Rig()
    rig.feed(packet(1, None, 0, b"abcd", [addr(ITEM, 0)]), packet(1, 8, 4, b"efgh"))
    assert payload_of(rig.heaps[0]) == b"abcdefgh"


def test_sized_heap_accepts_unsized_packet_that_fits():
    rig = Rig()
    rig.feed(packet(1, 8, 0, b"abcd", [addr(ITEM, 0)]), packet(1, None, 4, b"efgh"))
    assert payload_of(rig.heaps[0]) == b"abcdefgh"


# -- heap-length conflicts ----------------------------------------------------------------


def test_inconsistent_heap_length_rejected(caplog):
    rig = Rig(ring=incomplete_ring())
    with caplog.at_level(logging.INFO, logger="spead2"):
        rig.feed(packet(1, 20, 0, bytes(10)), packet(1, 30, 10, bytes(10)), packet(1, 30, 20, bytes(10)))
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert (heap.heap_length, heap.received_length) == (20, 10)
    assert caplog.text.count("packet rejected because its HEAP_LEN is inconsistent with the heap") == 2
    assert rig.stats.packets == 3


def test_heap_length_smaller_than_data_rejected(caplog):
    rig = Rig(allow_out_of_order=True)
    with caplog.at_level(logging.INFO, logger="spead2"):
        rig.feed(packet(1, None, 0, bytes(8), [addr(ITEM, 0)]), packet(1, 5, 0, bytes(2)))
    rig.asm.flush(True)
    assert payload_of(rig.heaps[0]) == bytes(8)
    assert "packet rejected because its HEAP_LEN is too small for the heap" in caplog.text


def test_unsized_packet_overflowing_sized_heap_rejected(caplog):
    # The reference accepted this and delivered a 12-byte "10-byte" heap.
    rig = Rig(ring=incomplete_ring())
    with caplog.at_level(logging.INFO, logger="spead2"):
        rig.feed(packet(1, 10, 0, bytes(5)), packet(1, None, 5, bytes(7)))
    rig.asm.flush(True)
    assert isinstance(rig.heaps[0], IncompleteHeap)
    assert rig.heaps[0].received_length == 5
    assert "payload would overflow given heap length" in caplog.text


def test_flavour_change_within_heap_rejected(caplog):
    rig = Rig(ring=incomplete_ring())
    with caplog.at_level(logging.INFO, logger="spead2"):
        rig.feed(packet(1, 10, 0, bytes(5)), packet(1, 10, 5, bytes(5), hab=48))
    rig.asm.flush(True)
    assert isinstance(rig.heaps[0], IncompleteHeap)
    assert "flavour is inconsistent" in caplog.text


# -- item addresses beyond the heap -------------------------------------------------------


def test_address_beyond_heap_makes_single_packet_heap_incomplete():
    rig = Rig(ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, bytes(10), [addr(ITEM, 11)]))
    assert rig.heaps == []
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert isinstance(heap, IncompleteHeap)
    assert (heap.received_length, heap.heap_length, heap.payload_ranges) == (10, 10, [(0, 10)])
    assert rig.nonzero_stats() == {
        "heaps": 1, "incomplete_heaps_flushed": 1, "packets": 1, "single_packet_heaps": 1,
    }


def test_address_at_heap_end_is_fine():
    rig = Rig()
    rig.feed(packet(1, 10, 0, bytes(10), [addr(ITEM, 10)]))
    assert isinstance(rig.heaps[0], Heap)


def test_address_beyond_multi_packet_heap_makes_it_incomplete():
    rig = Rig(ring=incomplete_ring(), allow_out_of_order=True)
    rig.feed(*split(1, bytes(10), [5], extra=(addr(ITEM, 12),)))
    rig.feed(packet(1, 10, 0, bytes(5)))  # a duplicate: ignored
    assert rig.heaps == []
    rig.asm.flush(True)
    assert isinstance(rig.heaps[0], IncompleteHeap)
    assert rig.heaps[0].received_length == 10


def test_address_beyond_unsized_heap_makes_it_incomplete():
    rig = Rig(ring=incomplete_ring())
    rig.feed(packet(1, None, 0, bytes(4), [addr(ITEM, 5)]))
    rig.asm.flush(True)
    assert isinstance(rig.heaps[0], IncompleteHeap)


# -- stop items ----------------------------------------------------------------------------


def test_stop_heap_discarded_and_others_flushed():
    rig = Rig(ring=incomplete_ring())
    results = rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 1, 0, b"\0", [STOP]), packet(3, 1, 0, b"x"))
    assert results == [True, False, False]
    assert [(type(h), h.cnt) for h in rig.heaps] == [(IncompleteHeap, 1)]
    assert rig.nonzero_stats() == {
        "heaps": 1, "incomplete_heaps_flushed": 1, "packets": 2, "single_packet_heaps": 1,
    }
    assert rig.asm.stopped


def test_stop_in_last_packet_discards_whole_heap():
    rig = Rig(ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 10, 0, bytes(5)))
    assert rig.feed(packet(2, 10, 5, bytes(5), [STOP])) == [False]
    assert [h.cnt for h in rig.heaps] == [1]
    assert rig.stats.heaps == 1


def test_stop_in_first_packet_of_multi_packet_heap_discards_it():
    # The reference would deliver this heap as incomplete; the stop heap is
    # discarded whatever packet carries the stop item.
    rig = Rig(ring=incomplete_ring(), max_heaps=1)
    rig.feed(packet(1, 10, 0, bytes(5)))
    assert rig.feed(packet(2, 10, 0, bytes(5), [STOP])) == [False]
    assert [h.cnt for h in rig.heaps] == [1]
    assert rig.nonzero_stats() == {"heaps": 1, "incomplete_heaps_flushed": 1, "packets": 2}


def test_stop_flush_drops_incomplete_when_contiguous_only(caplog):
    rig = Rig()
    with caplog.at_level(logging.WARNING, logger="spead2"):
        rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 1, 0, b"\0", [STOP]))
    assert rig.heaps == []
    assert "dropped incomplete heap 1 (5/10 bytes of payload)" in caplog.text


def test_stop_flush_delivers_contiguous_unsized_heap():
    rig = Rig()
    rig.feed(packet(1, None, 0, b"abc", [addr(ITEM, 0)]), packet(2, 1, 0, b"\0", [STOP]))
    assert payload_of(rig.heaps[0]) == b"abc"


def test_stop_in_rejected_packet_has_no_effect():
    rig = Rig()
    rig.feed(packet(2, 10, 0, bytes(5)))
    # Out of order in in-order mode, so rejected before its stop item is seen.
    assert rig.feed(packet(2, 10, 7, bytes(3), [STOP])) == [True]
    # Cannot start a heap at a non-zero offset: dropped, stop and all.
    assert rig.feed(packet(3, 10, 7, bytes(3), [STOP])) == [True]
    assert not rig.asm.stopped


def test_stop_in_duplicate_has_no_effect_out_of_order():
    rig = Rig(allow_out_of_order=True)
    rig.feed(packet(2, 10, 0, bytes(5)))
    assert rig.feed(packet(2, 10, 0, bytes(5), [STOP])) == [True]
    assert not rig.asm.stopped


def test_stop_ignored_when_not_stop_on_stop_item():
    rig = Rig(stop_on_stop_item=False)
    assert rig.feed(packet(2, 1, 0, b"\0", [STOP]), packet(3, 1, 0, b"x")) == [True, True]
    assert rig.heaps[0].is_end_of_stream()
    assert [h.cnt for h in rig.heaps] == [2, 3]


def test_other_control_values_have_no_effect():
    rig = Rig()
    for value in (0, 1, 3, 4):
        assert rig.feed(packet(value + 10, 1, 0, b"x", [imm(6, value)])) == [True]
    assert len(rig.heaps) == 4


def test_stop_item_in_other_flavour():
    rig = Rig()
    assert rig.feed(packet(2, 1, 0, b"\0", [imm(6, 2, 48)], hab=48)) == [False]


# -- flush -----------------------------------------------------------------------------------


def test_user_flush_counts_but_delivers_nothing():
    rig = Rig(ring=incomplete_ring(), substreams=2)
    rig.feed(packet(1, 10, 0, bytes(5)), packet(2, 10, 0, bytes(5)), packet(3, None, 0, bytes(5)))
    rig.asm.flush(False)
    assert rig.heaps == []
    assert rig.nonzero_stats() == {"heaps": 3, "incomplete_heaps_flushed": 3, "packets": 3}
    assert rig.feed(packet(4, 1, 0, b"x")) == [False]
    assert rig.stats.packets == 3


def test_end_of_stream_flush_delivers_incomplete():
    rig = Rig(ring=incomplete_ring(), allow_out_of_order=True)
    rig.feed(packet(1, 10, 5, bytes(5)), packet(2, 10, 0, bytes(2)))
    rig.asm.flush(True)
    assert sorted((h.cnt, h.payload_ranges) for h in rig.heaps) == [(1, [(5, 10)]), (2, [(0, 2)])]
    assert all(isinstance(h, IncompleteHeap) for h in rig.heaps)


def test_incomplete_heap_shows_immediates_only():
    rig = Rig(ring=incomplete_ring())
    rig.feed(packet(1, 10, 0, bytes(3), [addr(ITEM, 0), imm(ITEM + 1, 7), START]))
    rig.asm.flush(True)
    [heap] = rig.heaps
    assert item_values(heap) == [(6, bytes(5)), (ITEM + 1, b"\0\0\0\0\x07")]
    assert heap.is_start_of_stream()


# -- malformed packets --------------------------------------------------------------------


HOSTILE = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x53\x04\x03\x05", id="short-header"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 1)], b"x", magic=0), id="magic"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 1)], b"x", version=2), id="version"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 1)], b"x", widths=(2, 5)), id="widths"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 1)], b"x", widths=(0, 8)), id="hab64"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 1)], b"x")[:30], id="truncated-pointers"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 1), imm(3, 0), imm(4, 1)], b"x", n_items=65535), id="n-items-65535"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 4), imm(3, 2), imm(4, 3)], b"abc"), id="payload-past-heap-length"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 9), imm(3, 0), imm(4, 9)], b"abc"), id="payload-past-packet"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 3), imm(3, 0), imm(4, 3)], b"abcdef"), id="size-mismatch"),
    pytest.param(raw_packet([imm(1, 1), imm(2, 3), imm(3, 0)], b"abc"), id="no-payload-length"),
    pytest.param(raw_packet([imm(2, 3), imm(3, 0), imm(4, 3)], b"abc"), id="no-heap-cnt"),
    pytest.param(raw_packet([imm(1, 3), imm(2, 3), addr(3, 0), imm(4, 3)], b"abc"), id="addressed-offset"),
]


@pytest.mark.parametrize("data", HOSTILE)
def test_malformed_packet_dropped_and_counted(data):
    rig = Rig(ring=incomplete_ring())
    assert rig.feed(data) == [True]
    rig.asm.flush(True)
    assert rig.heaps == []
    assert rig.nonzero_stats() == {"invalid_packets": 1}


def test_malformed_packets_do_not_disturb_a_heap():
    rig = Rig()
    p = split(1, bytes(range(30)), [10, 20])
    rig.feed(p[0], *[param.values[0] for param in HOSTILE], p[1], p[2])
    assert payload_of(rig.heaps[0]) == bytes(range(30))
    assert rig.stats["invalid_packets"] == len(HOSTILE)
    assert rig.stats.packets == 3


def _peak_bytes(feed):
    tracemalloc.start()
    try:
        feed()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("out_of_order", [False, True])
def test_huge_heap_length_costs_only_received_bytes(out_of_order):
    rig = Rig(allow_out_of_order=out_of_order, max_heaps=4, ring=incomplete_ring())
    huge = (1 << 40) - 1
    packets = []
    for cnt in range(64):
        packets.append(packet(cnt, huge, 0, bytes(1000)))
        packets.append(packet(cnt, huge, huge - 5000 * (cnt + 1), bytes(1000)))
        packets.append(packet(cnt, huge, 1 << 39, bytes(1000)))

    def feed():
        for p in packets:
            assert rig.asm.add_packet(p)

    peak = _peak_bytes(feed)
    # 4 live heaps holding at most 3 KB each, plus bookkeeping: far below 1 MiB.
    assert peak < 1 << 20
    assert rig.stats.incomplete_heaps_evicted == 60


def test_huge_unsized_offsets_cost_only_received_bytes():
    rig = Rig(allow_out_of_order=True, max_heaps=2)
    packets = [packet(cnt % 3, None, (1 << 40) - 1 - 100 * cnt, bytes(100)) for cnt in range(300)]

    def feed():
        for p in packets:
            rig.asm.add_packet(p)

    assert _peak_bytes(feed) < 1 << 20


def test_hostile_overlaps_stay_correct():
    # Many overlapping and nested ranges of one heap: the received count must
    # equal the bytes covered, and the heap completes exactly when covered.
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    length = 4096
    covered = bytearray(length)
    import random

    rnd = random.Random(1234)
    completed = False
    for _ in range(3000):
        start = rnd.randrange(length)
        size = rnd.randrange(1, 64)
        end = min(length, start + size)
        rig.feed(packet(1, length, start, bytes(end - start)))
        covered[start:end] = b"\1" * (end - start)
        if rig.heaps:
            completed = True
            assert all(covered)
            break
    if not completed:
        rig.asm.flush(True)
        assert rig.heaps[0].received_length == sum(covered)


# -- properties -------------------------------------------------------------------------------


@st.composite
def heap_deliveries(draw):
    payload = draw(st.binary(min_size=1, max_size=300))
    cuts = sorted(draw(st.sets(st.integers(1, len(payload) - 1), max_size=12))) if len(payload) > 1 else []
    n = len(cuts) + 1
    order = draw(st.permutations(range(n)))
    sequence = []
    for index in order:
        sequence.extend([index] * draw(st.integers(0, 2)))  # lost, once or duplicated
    # Some late duplicates, after the heap may already be complete.
    sequence.extend(draw(st.lists(st.integers(0, n - 1), max_size=3)))
    return payload, cuts, sequence


def _merge(ranges):
    merged = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@settings(max_examples=200, deadline=None)
@given(heap_deliveries(), st.sampled_from([0, 65536]))
def test_out_of_order_delivery_property(delivery, slack):
    payload, cuts, sequence = delivery
    bounds = [0, *cuts, len(payload)]
    segments = list(zip(bounds, bounds[1:], strict=False))
    packets = split(9, payload, cuts, extra=(addr(ITEM, 0), imm(ITEM + 1, 3)))
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    with mock.patch.object(assembler_module, "LOOKAHEAD_SLACK", slack):
        for index in sequence:
            assert rig.asm.add_packet(packets[index])
        rig.asm.flush(True)

    # Model: a heap completes once every segment has arrived; a later packet
    # starts a new heap; what is left at the end is incomplete.
    expected = []
    have: set[int] = set()
    for index in sequence:
        have.add(index)
        if len(have) == len(segments):
            expected.append(("complete", None))
            have = set()
    if have:
        expected.append(("incomplete", frozenset(have)))

    assert len(rig.heaps) == len(expected)
    for heap, (kind, got) in zip(rig.heaps, expected, strict=True):
        if kind == "complete":
            assert isinstance(heap, Heap)
            assert bytes(heap.payload) == payload
        else:
            assert isinstance(heap, IncompleteHeap)
            ranges = _merge([segments[i] for i in got])
            assert heap.payload_ranges == ranges
            assert heap.received_length == sum(segments[i][1] - segments[i][0] for i in got)
            assert heap.heap_length == len(payload)
    assert rig.stats.packets == len(sequence)


@st.composite
def in_order_deliveries(draw):
    payload = draw(st.binary(min_size=1, max_size=300))
    cuts = sorted(draw(st.sets(st.integers(1, len(payload) - 1), max_size=12))) if len(payload) > 1 else []
    lost = draw(st.sets(st.integers(0, len(cuts)), max_size=2))
    return payload, cuts, lost


@settings(max_examples=200, deadline=None)
@given(in_order_deliveries(), st.booleans())
def test_in_order_delivery_property(delivery, sized):
    payload, cuts, lost = delivery
    packets = split(4, payload, cuts, extra=(addr(ITEM, 0),), sized=sized)
    rig = Rig(ring=incomplete_ring())
    for index, data in enumerate(packets):
        if index not in lost:
            rig.asm.add_packet(data)
    rig.asm.flush(True)
    bounds = [0, *cuts, len(payload)]
    if 0 in lost:
        assert rig.heaps == []  # nothing can start a heap mid-way
        return
    [heap] = rig.heaps
    first_lost = min(lost, default=len(packets))
    received = bounds[first_lost]
    if not lost or (not sized and first_lost == len(packets)):
        assert isinstance(heap, Heap)
        assert bytes(heap.payload) == payload
        assert item_values(heap) == [(ITEM, payload)]
    elif not sized:
        # An unsized heap is whatever arrived contiguously from 0.
        assert isinstance(heap, Heap)
        assert bytes(heap.payload) == payload[:received]
    else:
        assert isinstance(heap, IncompleteHeap)
        assert heap.received_length == received
        assert heap.payload_ranges == [(0, received)]


def test_far_ahead_overlapping_packet_rejected():
    rig = Rig(allow_out_of_order=True, ring=incomplete_ring())
    with mock.patch.object(assembler_module, "LOOKAHEAD_SLACK", 0):
        rig.feed(packet(1, 1000, 0, bytes(10)), packet(1, 1000, 500, bytes(10)))
        # Overlaps [500, 510) and lands far beyond the 10 bytes at the start.
        rig.feed(packet(1, 1000, 505, bytes(100)))
        # Touching is not overlapping: accepted.
        rig.feed(packet(1, 1000, 510, bytes(100)))
    rig.asm.flush(True)
    assert rig.heaps[0].payload_ranges == [(0, 10), (500, 610)]


def test_bytes_held_aside_bounded_by_bytes_received():
    rig = Rig(allow_out_of_order=True)
    length = (1 << 40) - 1
    packets = [packet(1, length, (1 << 39) + shift, bytes(1000)) for shift in range(2000)]

    def feed():
        for p in packets:
            rig.asm.add_packet(p)

    # 2000 packets of 1000 bytes, each overlapping the previous by 999 bytes:
    # only ~3 KB of new data, so almost nothing may be kept.
    assert _peak_bytes(feed) < 200_000


def test_pointers_at_one_address_keep_pointer_order():
    # The earlier pointer at a shared address gets length 0, whatever the IDs' order.
    heap = Heap(1, Flavour(4, 64, 40, 0), [addr(ITEM + 5, 0), addr(ITEM, 0), addr(ITEM + 1, 4)],
                bytearray(b"abcdefgh"))
    assert item_values(heap) == [(ITEM, b"abcd"), (ITEM + 1, b"efgh")]
    assert heap._addressed() == [(ITEM + 5, 0, 0), (ITEM, 0, 4), (ITEM + 1, 4, 4)]
