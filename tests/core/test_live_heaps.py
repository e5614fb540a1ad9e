"""The live-heap state machine (spead2/protocols/live_heaps.py), alone, fed with packet bytes.

A minimal machine writes each heap's payload into a bytearray of its own, so
these tests see exactly what the shared machine decides: which packets join
which heap, which are rejected and why, when a heap completes, what leaves on
eviction and flush, and what the statistics say.
"""

from __future__ import annotations

import ast
import logging
import pathlib

import pytest

from spead2.protocols import live_heaps
from spead2.protocols.live_heaps import (
    MAX_RANGES,
    HeapTable,
    LiveHeap,
    LiveHeapMachine,
    RangeSet,
    addresses_fit,
    stop_words,
)
from spead2.protocols.packet import decode_packet
from spead2.protocols.stats import HEAPS, INCOMPLETE_HEAPS_EVICTED, INCOMPLETE_HEAPS_FLUSHED
from spead2.recv._config import StreamConfig
from tests.helpers.packets import STOP, addr, imm, packet

PROTOCOLS = pathlib.Path(live_heaps.__file__).parent


class BufferHeap(LiveHeap):
    __slots__ = ("data",)

    def __init__(self, cnt: int, hab: int, length: int, in_order: bool) -> None:
        super().__init__(cnt, hab, length, in_order)
        self.data = bytearray(max(length, 0))


class Machine(LiveHeapMachine[BufferHeap]):
    """Creates a heap at any first packet; records completions, stops and reports."""

    def __init__(self, **config: object) -> None:
        self.stats = [0] * 16
        self.reports: list[tuple[object, ...]] = []
        super().__init__(StreamConfig(**config), self.stats, lambda *r: self.reports.append(r))
        self.completed: list[tuple[int, bytes, list[int]]] = []
        self.evicted: list[int] = []
        self.stopped = False

    def add(self, data: bytes) -> bool:
        decoded = decode_packet(data)
        assert decoded is not None
        cnt, length, offset, plen, hab, start, pointers = decoded
        view = memoryview(data)
        heap = self._table.get(cnt)
        if heap is None:
            heap = BufferHeap(cnt, hab, length, self._in_order)
            evicted = self._table.insert(heap)
            if evicted is not None:
                self.evicted.append(evicted.cnt)
            if plen == 0 and offset == 0:
                heap.add_pointers(pointers)
                return True
            heap.add_pointers(pointers)
            pointers = ()
            if heap.ranges is not None:
                heap.received = heap.ranges.add(offset, plen)
            else:
                heap.received = plen
            self._write(heap, offset, plen, view, start)
            if heap.received == heap.length and addresses_fit(heap.pointers, hab, length):
                self._table.remove(heap)
                self._complete(heap)
            return True
        return self._join(heap, length, offset, plen, hab, start, pointers, view)

    def _write(self, heap: BufferHeap, offset: int, plen: int, view: memoryview, start: int) -> None:
        if len(heap.data) < offset + plen:
            heap.data += bytes(offset + plen - len(heap.data))
        heap.data[offset : offset + plen] = view[start:]

    def _complete(self, heap: BufferHeap) -> None:
        self.completed.append((heap.cnt, bytes(heap.data), list(heap.pointers)))

    def _stop(self) -> None:
        self.stopped = True

    def reasons(self) -> list[object]:
        return [r[1] for r in self.reports]


# -- RangeSet ------------------------------------------------------------------------------


def test_ranges_merge_and_count_new_bytes():
    ranges = RangeSet()
    assert ranges.add(10, 5) == 5
    assert ranges.add(0, 5) == 5
    assert ranges.add(15, 5) == 5  # continues the furthest range
    assert ranges.pairs() == [(0, 5), (10, 20)]
    assert not ranges.contiguous()
    assert ranges.add(3, 9) == 5  # fills the gap, overlapping both sides
    assert ranges.pairs() == [(0, 20)]
    assert ranges.contiguous()
    assert ranges.extent() == 20


def test_ranges_reject_duplicates_and_far_overlaps():
    ranges = RangeSet()
    ranges.add(0, 10)
    assert ranges.add(2, 5) == -1  # nothing new
    assert ranges.add(5, 10) == 5
    assert ranges.add(10, 10, far=True) == -1  # held aside and overlapping: refused
    assert ranges.add(0, 0) == 0


def test_range_count_capped():
    ranges = RangeSet()
    for i in range(MAX_RANGES):
        assert ranges.add(2 * i, 1) == 1
    assert ranges.add(2 * MAX_RANGES, 1) == -1
    assert ranges.add(1, 1) == 1  # a packet that merges ranges is still welcome


# -- helpers -------------------------------------------------------------------------------


def test_addresses_fit_ignores_immediates():
    assert addresses_fit([addr(0x1000, 8), imm(0x1001, 1 << 30)], 40, 8)
    assert not addresses_fit([addr(0x1000, 9)], 40, 8)


def test_stop_words():
    assert stop_words(False) is None
    words = stop_words(True)
    assert words is not None and words[5] == STOP


def test_table_evicts_oldest_and_counts():
    stats = [0] * 16
    table: HeapTable[LiveHeap] = HeapTable(2, 1, stats)
    heaps = [LiveHeap(cnt, 40, 10, True) for cnt in (1, 2, 3)]
    assert table.insert(heaps[0]) is None
    assert table.insert(heaps[1]) is None
    assert table.insert(heaps[2]) is heaps[0]
    assert (stats[INCOMPLETE_HEAPS_EVICTED], stats[HEAPS]) == (1, 1)
    assert table.get(1) is None and table.get(3) is heaps[2]
    assert list(table.heaps()) == heaps[1:]
    assert list(table.flush()) == heaps[1:]
    assert (stats[INCOMPLETE_HEAPS_FLUSHED], stats[HEAPS]) == (2, 3)
    assert len(table) == 0


def test_table_substreams_are_separate():
    stats = [0] * 16
    table: HeapTable[LiveHeap] = HeapTable(1, 2, stats)
    table.insert(LiveHeap(2, 40, 10, True))
    assert table.insert(LiveHeap(3, 40, 10, True)) is None  # another substream
    assert table.insert(LiveHeap(4, 40, 10, True)).cnt == 2  # type: ignore[union-attr]
    heap = table.get(3)
    assert heap is not None
    table.remove(heap)
    assert len(table) == 1


# -- the machine ---------------------------------------------------------------------------


@pytest.mark.parametrize("out_of_order", [False, True])
def test_heap_completes_in_order(out_of_order):
    m = Machine(allow_out_of_order=out_of_order)
    m.add(packet(7, 8, 0, b"abcd", (addr(0x1000, 0),)))
    m.add(packet(7, 8, 4, b"efgh"))
    assert m.completed == [(7, b"abcdefgh", [addr(0x1000, 0)])]
    assert m.live_heaps == 0


def test_out_of_order_rejected_in_order_mode():
    m = Machine()
    m.add(packet(7, 8, 0, b"ab"))
    m.add(packet(7, 8, 4, b"efgh"))
    assert m.reasons() == ["heap-order"]
    assert m.reports[0][0] == logging.WARNING
    assert m.completed == []


def test_out_of_order_accepted_and_duplicates_dropped():
    m = Machine(allow_out_of_order=True)
    m.add(packet(7, 8, 4, b"efgh"))
    m.add(packet(7, 8, 4, b"EFGH"))  # a duplicate: nothing new
    m.add(packet(7, 8, 0, b"abcd"))
    assert m.completed == [(7, b"abcdefgh", [])]


def test_inconsistent_packets_rejected_with_reasons():
    m = Machine(allow_unsized_heaps=True)
    m.add(packet(7, 8, 0, b"ab"))
    m.add(packet(7, 9, 2, b"cd"))  # another HEAP_LENGTH
    m.add(packet(7, 8, 2, b"cd", hab=48))  # another flavour
    m.add(packet(7, None, 2, b"cdefgh1"))  # unsized, overflowing the heap
    assert m.reasons() == ["heap-heaplen-inconsistent", "heap-flavour", "heap-heaplen-overflow"]
    m.add(packet(7, None, 2, b"cdefgh"))
    assert m.completed == [(7, b"abcdefgh", [])]


def test_unsized_heap_learns_its_length():
    m = Machine(allow_unsized_heaps=True)
    m.add(packet(7, None, 0, b"abcd"))
    m.add(packet(7, 3, 0, b""))  # too small for what arrived
    assert m.reasons() == ["heap-heaplen-small"]
    m.add(packet(7, 6, 4, b"ef"))
    assert m.completed == [(7, b"abcdef", [])]


def test_stop_item_discards_its_heap_and_stops():
    m = Machine()
    m.add(packet(7, 8, 0, b"abcd"))
    assert m.add(packet(7, 8, 4, b"efgh", (STOP,))) is False
    assert m.stopped and m.live_heaps == 0 and m.completed == []


def test_stop_item_ignored_when_disabled():
    m = Machine(stop_on_stop_item=False)
    m.add(packet(7, 8, 0, b"abcd"))
    assert m.add(packet(7, 8, 4, b"efgh", (STOP,))) is True
    assert not m.stopped
    assert m.completed == [(7, b"abcdefgh", [STOP])]


def test_address_beyond_heap_never_completes():
    m = Machine()
    m.add(packet(7, 8, 0, b"abcd"))
    m.add(packet(7, 8, 4, b"efgh", (addr(0x1000, 9),)))
    assert m.completed == []
    assert m.live_heaps == 1
    [heap] = m._table.heaps()
    assert heap.bad


def test_pointers_kept_once():
    m = Machine()
    extra = (addr(0x1000, 0), imm(0x1001, 5))
    m.add(packet(7, 12, 0, b"abcd", extra))
    m.add(packet(7, 12, 4, b"efgh", extra))
    m.add(packet(7, 12, 8, b"ijkl", (*extra, imm(0x1002, 1))))
    assert m.completed == [(7, b"abcdefghijkl", [*extra, imm(0x1002, 1)])]


def test_eviction_through_the_machine():
    m = Machine(max_heaps=2)
    for cnt in (1, 2, 3):
        m.add(packet(cnt, 8, 0, b"ab"))
    assert m.evicted == [1]
    assert m.stats[INCOMPLETE_HEAPS_EVICTED] == 1


# -- the core stands alone -------------------------------------------------------------------


def test_protocols_import_nothing_from_the_rest_of_the_package():
    for path in PROTOCOLS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name} imports from outside spead2.protocols"
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                for name in names:
                    assert not (name or "").startswith("spead2"), f"{path.name} imports {name}"
                    root = (name or "").split(".")[0]
                    assert root not in {"asyncio", "time", "threading", "socket"}, f"{path.name}: {name}"
