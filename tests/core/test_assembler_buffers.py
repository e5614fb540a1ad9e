"""Heap buffers (spead2/protocols/assembler.py, heaps.py): allocated whole when
HEAP_LENGTH is believable, doubled otherwise, and recycled when a heap dies unused."""

from __future__ import annotations

import pytest

from spead2.protocols import heaps as heaps_module
from tests.helpers.assembler import Rig, payload_of
from tests.helpers.packets import packet, split


def _big_heap_packets(cnt, size, fill, packet_payload=8000):
    payload = bytes([fill]) * size
    return split(cnt, payload, list(range(packet_payload, size, packet_payload)))


@pytest.mark.parametrize("out_of_order", [False, True])
def test_heap_buffer_allocated_whole_when_small_against_bytes_received(out_of_order):
    size = 1 << 20
    rig = Rig(allow_out_of_order=out_of_order)
    first, *rest = _big_heap_packets(1, size, 7, packet_payload=8500)
    rig.feed(first)
    [live] = rig.asm._table.heaps()
    # 1 MiB is under PREALLOCATE_RATIO x the 8500 bytes received: one allocation.
    assert len(live.payload) == size
    rig.feed(*rest)
    assert payload_of(rig.heaps[0]) == bytes([7]) * size


def test_heap_buffer_doubles_while_heap_length_is_far_beyond_bytes_received():
    huge = 1 << 40
    rig = Rig()
    rig.feed(packet(1, huge, 0, bytes(1000)), packet(1, huge, 1000, bytes(1000)))
    [live] = rig.asm._table.heaps()
    assert 2000 <= len(live.payload) <= 4000


def test_dead_heap_buffer_is_reused_by_the_next_heap_of_its_size():
    size = 1 << 18
    rig = Rig()
    rig.feed(*_big_heap_packets(1, size, 1))
    first = rig.heaps.pop()
    buffer_id = id(first._payload)
    del first
    assert [id(b) for b in rig.asm._spare] == [buffer_id]
    rig.feed(*_big_heap_packets(2, size, 2))
    second = rig.heaps.pop()
    assert id(second._payload) == buffer_id
    assert payload_of(second) == bytes([2]) * size


def test_buffer_in_use_by_a_value_is_never_reused():
    size = 1 << 18
    rig = Rig()
    rig.feed(*_big_heap_packets(1, size, 1))
    heap = rig.heaps.pop()
    [item] = heap.get_items()
    view = memoryview(item)  # as a numpy value from ItemGroup.update would
    del heap, item
    assert not rig.asm._spare
    rig.feed(*_big_heap_packets(2, size, 2))
    assert bytes(view) == bytes([1]) * size
    assert payload_of(rig.heaps.pop()) == bytes([2]) * size


def test_spare_buffers_are_bounded():
    size = 1 << 17
    rig = Rig(max_heaps=16)
    for cnt in range(10):
        rig.feed(*_big_heap_packets(cnt, size, cnt))
    assert len(rig.heaps) == 10
    rig.heaps.clear()
    assert len(rig.asm._spare) == heaps_module.RECYCLE_BUFFERS


def test_small_heaps_are_not_recycled():
    rig = Rig()
    rig.feed(*_big_heap_packets(1, 20000, 1))
    rig.heaps.clear()
    assert not rig.asm._spare


def test_spare_buffer_of_another_length_is_not_used():
    rig = Rig()
    rig.feed(*_big_heap_packets(1, 1 << 18, 1))
    rig.heaps.clear()
    [spare] = rig.asm._spare
    first, *rest = _big_heap_packets(2, 1 << 19, 2)
    rig.feed(first)
    [live] = rig.asm._table.heaps()
    assert live.payload is not spare and len(live.payload) == 1 << 19
    rig.feed(*rest)
    assert payload_of(rig.heaps.pop()) == bytes([2]) * (1 << 19)


def test_dead_heap_buffer_is_reused_after_growing_by_doubling():
    # Small packets: the buffer doubles until HEAP_LENGTH is believable, then
    # jumps to a recycled buffer of the heap's length, keeping the bytes so far.
    size = 1 << 18
    rig = Rig()
    rig.feed(*_big_heap_packets(1, size, 1, packet_payload=1000))
    first = rig.heaps.pop()
    buffer_id = id(first._payload)
    del first
    rig.feed(*_big_heap_packets(2, size, 2, packet_payload=1000)[:2])
    [live] = rig.asm._table.heaps()
    assert len(live.payload) < size  # still doubling: 2000 bytes is under 1/128 of the heap
    rig.feed(*_big_heap_packets(2, size, 2, packet_payload=1000)[2:])
    second = rig.heaps.pop()
    assert id(second._payload) == buffer_id
    assert payload_of(second) == bytes([2]) * size
