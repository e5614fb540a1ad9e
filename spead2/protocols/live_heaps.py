"""The live-heap state machine that heap assembly and chunk placement share.

Implements what a spead2 receiver does with a valid packet up to the point
where its payload is
written: which live heap a packet belongs to (per substream, ``cnt %
substreams``, at most ``max_heaps`` each, the oldest-created evicted when a
substream is full), whether it may join it (flavour, HEAP_LENGTH
reconciliation, order, duplicates, the cap on separate ranges), stop items,
the item-address check, and the core statistics of heaps leaving (evicted,
flushed).

:class:`LiveHeapMachine` runs a packet that joins an existing heap through all
of that and then calls its subclass's :meth:`LiveHeapMachine._write` hook:
the plain assembler (:mod:`.assembler`) copies the payload into a heap buffer
of its own, the chunk placer (:mod:`.chunking`) into a chunk slot. The first
packet of a heap differs more (a one-packet heap, the place callback) and is
each subclass's own, built from the same pieces.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Buffer, Iterator
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .batch import (
    HEADER_SIZE,
    PacketBatch,
    SingleHeaps,
    regular_runs,
    run_rows,
    single_packet_heaps,
)
from .constants import CTRL_STREAM_STOP, IMMEDIATE, STREAM_CTRL_ID
from .placement import PacketPlan, PlacedBatch, Placement, predicted_count
from .report import Report
from .stats import (
    HEAPS,
    INCOMPLETE_HEAPS_EVICTED,
    INCOMPLETE_HEAPS_FLUSHED,
    PACKETS,
    StreamStatConfig,
)

__all__ = [
    "MAX_RANGES",
    "IMMEDIATE",
    "LiveHeapConfig",
    "RangeSet",
    "LiveHeap",
    "HeapTable",
    "LiveHeapMachine",
    "addresses_fit",
    "stop_words",
]

_INFO = logging.INFO
_WARNING = logging.WARNING

#: Most separate (non-touching) byte ranges an out-of-order heap may hold.
#: Honest reordering creates a handful; the cap keeps hostile packet patterns
#: from making range insertion quadratic. A packet that would open one more
#: range is rejected (and the heap ends up incomplete).
MAX_RANGES = 16384


class LiveHeapConfig(Protocol):
    """What the state machine reads from a ``recv.StreamConfig``."""

    @property
    def max_heaps(self) -> int: ...
    @property
    def substreams(self) -> int: ...
    @property
    def bug_compat(self) -> int: ...
    @property
    def stop_on_stop_item(self) -> bool: ...
    @property
    def allow_unsized_heaps(self) -> bool: ...
    @property
    def allow_out_of_order(self) -> bool: ...
    @property
    def stats(self) -> list[StreamStatConfig]: ...


def addresses_fit(pointers: list[int] | tuple[int, ...], hab: int, length: int) -> bool:
    """Whether every addressed pointer's address lies within a ``length``-byte payload."""
    mask = (1 << hab) - 1
    for word in pointers:
        if word < IMMEDIATE and word & mask > length:
            return False
    return True


def stop_words(enabled: bool) -> list[int] | None:
    """Per heap-address width in bytes, the exact word of an immediate stop item.

    ``None`` when stop items have no effect; a packet carries a stop item when
    ``words[hab >> 3] in pointers`` (a C-level ``in``).
    """
    if not enabled:
        return None
    return [
        IMMEDIATE | (STREAM_CTRL_ID << (8 * w)) | CTRL_STREAM_STOP if 0 < w < 8 else -1
        for w in range(9)
    ]


class RangeSet:
    """The byte ranges of a heap received out of order: sorted, disjoint, non-touching."""

    __slots__ = ("starts", "ends")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, offset: int, plen: int, far: bool = False) -> int:
        """Record ``[offset, offset + plen)``; return the number of new bytes, or -1.

        -1 rejects the packet: it carries nothing new (a duplicate), it would
        open more than :data:`MAX_RANGES` ranges, or it is ``far`` (the caller
        would hold it aside) and overlaps bytes already received.
        """
        if plen == 0:
            return 0
        end = offset + plen
        starts = self.starts
        ends = self.ends
        if ends and ends[-1] == offset:
            ends[-1] = end  # the usual case: continues the furthest range
            return plen
        if not ends or ends[-1] < offset:
            if len(ends) >= MAX_RANGES:
                return -1
            starts.append(offset)
            ends.append(end)
            return plen
        # Ranges [i, j) overlap or touch [offset, end).
        i = bisect_left(ends, offset)
        j = bisect_right(starts, end)
        if i == j:
            if len(ends) >= MAX_RANGES:
                return -1
            starts.insert(i, offset)
            ends.insert(i, end)
            return plen
        covered = 0
        for k in range(i, j):
            covered += min(ends[k], end) - max(starts[k], offset)  # >= 0: they touch
        new = plen - covered
        if new == 0 or (far and covered):
            return -1
        starts[i:j] = [min(starts[i], offset)]
        ends[i:j] = [max(ends[j - 1], end)]
        return new

    def extent(self) -> int:
        """One past the furthest byte received."""
        return self.ends[-1] if self.ends else 0

    def contiguous(self) -> bool:
        """Whether the bytes received are one range from 0 (or none)."""
        starts = self.starts
        return not starts or (len(starts) == 1 and starts[0] == 0)

    def pairs(self) -> list[tuple[int, int]]:
        """The ``(start, end)`` ranges."""
        return list(zip(self.starts, self.ends, strict=True))


class LiveHeap:
    """A heap still receiving packets: what the state machine tracks of it.

    ``ranges`` is ``None`` in in-order mode, where the bytes received are
    always exactly ``[0, received)``.
    """

    __slots__ = ("cnt", "hab", "length", "received", "ranges", "pointers", "seen", "bad")

    def __init__(self, cnt: int, hab: int, length: int, in_order: bool) -> None:
        self.cnt = cnt
        self.hab = hab
        self.length = length  # -1 while unsized
        self.received = 0
        self.ranges: RangeSet | None = None if in_order else RangeSet()
        self.pointers: list[int] = []
        #: The distinct words of ``pointers``, built when a second packet brings pointers.
        self.seen: set[int] | None = None
        #: All bytes arrived but an item address lies beyond the heap: it can
        #: never be delivered complete, only evicted or flushed as incomplete.
        self.bad = False

    def add_pointers(self, pointers: tuple[int, ...]) -> None:
        """Append the words of ``pointers`` not already held.

        A delivered heap keeps only the first occurrence of each word anyway;
        dropping repeats here keeps a heap's memory proportional to what is
        new, so a flood of copies of one payload-less packet (or a sender
        repeating its pointers in every packet) cannot grow it without bound.
        """
        held = self.pointers
        if not held:
            held += pointers
            return
        seen = self.seen
        if seen is None:
            seen = self.seen = set(held)
        for word in pointers:
            if word not in seen:
                seen.add(word)
                held.append(word)

    def extent(self) -> int:
        """One past the furthest byte received."""
        ranges = self.ranges
        return self.received if ranges is None else ranges.extent()

    def contiguous(self) -> bool:
        """Whether the bytes received are exactly ``[0, received)``."""
        ranges = self.ranges
        return ranges is None or ranges.contiguous()

    def range_pairs(self) -> list[tuple[int, int]]:
        """Merged ``(start, end)`` byte ranges received."""
        ranges = self.ranges
        if ranges is None:
            return [(0, self.received)] if self.received else []
        return ranges.pairs()

    def far(self, offset: int, plen: int) -> bool:
        """Whether a packet at ``offset`` would be held aside rather than written (see assembler)."""
        return False


class HeapTable[H: LiveHeap]:
    """The live heaps of every substream, each substream's in creation order.

    Counts heaps leaving before completion in the stream's statistics:
    :meth:`insert` evicts (``incomplete_heaps_evicted``), :meth:`flush`
    empties the table (``incomplete_heaps_flushed``); both also count ``heaps``.
    """

    __slots__ = ("_live", "_max_heaps", "_substreams", "_stats")

    def __init__(self, max_heaps: int, substreams: int, stats: list[int]) -> None:
        #: Per substream key: cnt -> heap (dicts keep insertion order).
        self._live: dict[int, dict[int, H]] = {}
        self._max_heaps = max_heaps
        self._substreams = substreams
        self._stats = stats

    def __len__(self) -> int:
        return sum(len(live) for live in self._live.values())

    def heaps(self) -> Iterator[H]:
        """Every live heap (substream by substream, each in creation order)."""
        for live in self._live.values():
            yield from live.values()

    def get(self, cnt: int) -> H | None:
        """The live heap ``cnt``, if any."""
        live = self._live.get(cnt % self._substreams)
        return None if live is None else live.get(cnt)

    def insert(self, heap: H) -> H | None:
        """Add a new heap; return the heap evicted to make room (already counted), if any."""
        key = heap.cnt % self._substreams
        live = self._live.get(key)
        evicted = None
        if live is None:
            live = self._live[key] = {}
        elif len(live) >= self._max_heaps:
            evicted = live.pop(next(iter(live)))
            stats = self._stats
            stats[INCOMPLETE_HEAPS_EVICTED] += 1
            stats[HEAPS] += 1
        live[heap.cnt] = heap
        return evicted

    def remove(self, heap: H) -> None:
        """Take ``heap`` out (it completed, or it carried a stop item)."""
        key = heap.cnt % self._substreams
        live = self._live[key]
        del live[heap.cnt]
        if not live:
            # Forget empty substreams: with many substreams, cnts seen once must not pile up.
            del self._live[key]

    def flush(self) -> Iterator[H]:
        """Empty the table, counting each heap as flushed; yields them (substream by substream)."""
        tables = self._live
        self._live = {}
        stats = self._stats
        for live in tables.values():
            for heap in live.values():
                stats[INCOMPLETE_HEAPS_FLUSHED] += 1
                stats[HEAPS] += 1
                yield heap


class LiveHeapMachine[H: LiveHeap]:
    """Packets joining live heaps: the checks, the ranges, stop items, completion.

    Subclasses create heaps (their first packet), write payloads
    (:meth:`_write`) and finish heaps (:meth:`_complete`, :meth:`_stop`).
    """

    def __init__(self, config: LiveHeapConfig, stats: list[int], report: Report) -> None:
        self._in_order = not config.allow_out_of_order
        self._stop_words = stop_words(config.stop_on_stop_item)
        self._stats = stats
        self._report = report
        self._table: HeapTable[H] = HeapTable(config.max_heaps, config.substreams, stats)
        #: The heap the last in-order payload continued, and that payload's length:
        #: where the next packets are predicted to go (:meth:`placement`).
        self._last_heap: H | None = None
        self._last_plen = 0
        #: The last placement's plan, reused while the heap continues.
        self._plan: PacketPlan | None = None

    @property
    def live_heaps(self) -> int:
        """Number of partial heaps currently held (all substreams)."""
        return len(self._table)

    def _join(
        self, heap: H, length: int, offset: int, plen: int, hab: int, start: int,
        pointers: tuple[int, ...], view: memoryview,
    ) -> bool:
        """A packet of live heap ``heap`` arrived; return False if it carried a stop item."""
        if hab != heap.hab:
            self._report(
                _INFO, "heap-flavour", "packet rejected because its flavour is inconsistent with the heap"
            )
            return True
        if length != heap.length and not self._reconcile_length(heap, length, offset + plen):
            return True
        ranges = heap.ranges
        if ranges is None:
            if offset != heap.received:
                self._report(
                    _WARNING, "heap-order",
                    "packet rejected because it is out-of-order in the heap (you might "
                    "need to set allow_out_of_order to true in the stream config)",
                )
                return True
            heap.received += plen
        elif plen:
            far = heap.far(offset, plen)
            new = ranges.add(offset, plen, far)
            if new < 0:
                return True
            heap.received += new
        if pointers:
            stop = self._stop_words
            if stop is not None and stop[hab >> 3] in pointers:
                self._table.remove(heap)  # the stop heap is discarded
                self._stop()
                return False
            heap.add_pointers(pointers)
        self._last_heap = heap
        self._last_plen = plen
        self._write(heap, offset, plen, view, start)
        if heap.received == heap.length and not heap.bad:
            self._finish_whole(heap)
        return True

    def _reconcile_length(self, heap: LiveHeap, length: int, end: int) -> bool:
        """Check a packet's HEAP_LENGTH (or its absence) against its heap's; False rejects it."""
        report = self._report
        if length < 0:
            # A packet without HEAP_LENGTH joining a sized heap must still fit in it.
            if end > heap.length:
                report(
                    _INFO, "heap-heaplen-overflow",
                    "packet rejected because payload would overflow given heap length",
                )
                return False
            return True
        if heap.length >= 0:
            report(
                _INFO, "heap-heaplen-inconsistent",
                "packet rejected because its HEAP_LEN is inconsistent with the heap",
            )
            return False
        if length < heap.extent():
            report(
                _INFO, "heap-heaplen-small", "packet rejected because its HEAP_LEN is too small for the heap"
            )
            return False
        heap.length = length  # an unsized heap learns its size
        return True

    # -- batches ---------------------------------------------------------------------

    def add_packet(self, data: Buffer) -> bool:
        """Process one packet; False once the stream must stop (subclasses)."""
        raise NotImplementedError

    def add_batch(self, batch: PacketBatch) -> bool:
        """Process a batch of packets in order; False once the stream must stop.

        The same result as :meth:`add_packet` on each packet in turn, faster:
        each run of regular packets continuing a live heap (see
        :mod:`.batch`) is checked once and copied with one strided copy;
        every other packet goes through :meth:`add_packet`.
        """
        found = regular_runs(batch)
        if found is None:
            single = single_packet_heaps(batch, self._stop_words)
            if single is not None:
                return self._add_single_heaps(batch, single)
            self._prepare_batch(batch)
            add_packet = self.add_packet
            for packet in batch:
                if not add_packet(packet):
                    return False
            return True
        runs, starts = found
        self._prepare_batch(batch)
        add_packet = self.add_packet
        table = self._table
        stats = self._stats
        view = batch.view
        for run in runs:
            first = run.first
            last = run.last
            plen = run.plen
            if plen <= 0 or first == last:
                # Irregular, alone, or nothing to gain.
                for i in range(first, last + 1):
                    if not add_packet(batch[i]):
                        return False
                continue
            offset = run.offset
            heap = table.get(run.cnt)
            if heap is None:
                # The heap's first packet goes the packet path, which creates the heap.
                if not add_packet(batch[first]):
                    return False
                first += 1
                offset += plen
                heap = table.get(run.cnt)
            ranges = heap.ranges if heap is not None else None
            if (
                heap is None
                or first == last
                or not self._bulk_ready(heap, offset)
                or heap.hab != run.hab
                or heap.length != run.length
                or (heap.received if ranges is None else ranges.extent()) != offset
                or (ranges is not None and not ranges.ends)
            ):
                for i in range(first, last + 1):  # whatever it is, the packet path says
                    if not add_packet(batch[i]):
                        return False
                continue
            k = last - first + 1
            end = offset + k * plen
            rows = run_rows(view, starts, first, last, plen)
            if rows is None:
                for i in range(first, last + 1):
                    if not add_packet(batch[i]):
                        return False
                continue
            stats[PACKETS] += k
            if ranges is None:
                heap.received = end
            else:
                ranges.ends[-1] = end
                heap.received += k * plen
            self._bulk_write(heap, offset, plen, rows)
            self._last_heap = heap
            self._last_plen = plen
            if heap.received == heap.length and not heap.bad:
                self._finish_whole(heap)
        return True

    # -- payloads received in place (see .placement) ----------------------------------

    def placement(self, limit: int) -> Placement | None:
        """Where the next ``limit`` packets go if they continue the last heap in order, or None.

        Offered only for a live, sized, unfinished heap holding exactly
        ``[0, received)`` in a buffer of its full length (so every predicted
        place is a byte not yet received), and only until the next packet is
        processed.
        """
        heap = self._last_heap
        if heap is None or limit <= 0:
            return None
        received = heap.received
        length = heap.length
        if heap.bad or not 0 < received < length or self._table.get(heap.cnt) is not heap:
            return None
        ranges = heap.ranges
        if ranges is not None and (len(ranges.starts) != 1 or ranges.starts[0] != 0 or ranges.ends[0] != received):
            return None
        buffer = self._placement_buffer(heap)
        if buffer is None:
            return None
        placement = Placement(
            heap, buffer, heap.cnt, heap.hab, length, received, self._last_plen, limit, self._plan
        )
        self._plan = placement.plan
        return placement

    def add_placed_batch(self, batch: PlacedBatch) -> bool:
        """Account for ``batch.placed`` packets received in place, then process the rest.

        The same as :meth:`add_packet` on each placed packet (exactly the
        packets ``batch.placement`` predicted, their payloads already in the
        heap's buffer) followed by :meth:`add_predicted` on the listed packets.
        """
        placed = batch.placed
        if placed:
            placement = batch.placement
            heap: H = placement.heap  # type: ignore[assignment]
            if heap is not self._last_heap or heap.received != placement.offset:
                raise RuntimeError("a placement was used after the heap moved on")
            self._account_placed(heap, placement, placed)
        return self.add_predicted(batch) if len(batch) else True

    def add_predicted(self, batch: PacketBatch) -> bool:
        """:meth:`add_batch`, trying first whether the packets continue the last heap as predicted.

        Each leading run of packets that are exactly the packets
        :meth:`placement` predicts (:func:`.placement.predicted_count`) is
        copied into the heap's buffer and accounted for as if received in
        place; a packet that is not goes through :meth:`add_packet` (the
        first packets of a heap, which make the next prediction); after two
        such packets in a row the rest of the batch goes to :meth:`add_batch`.
        The same result as :meth:`add_packet` on each packet in turn.
        """
        n = len(batch)
        view = batch.view
        starts = np.asarray(batch.starts, dtype=np.intp)
        sizes = np.asarray(batch.sizes, dtype=np.intp)
        i = 0
        misses = 0
        while i < n:
            placement = self.placement(n - i)
            k = 0 if placement is None else predicted_count(view, starts[i:], sizes[i:], placement)
            if k:
                assert placement is not None
                _copy_predicted(view, starts[i : i + k], placement, k)
                self._account_placed(placement.heap, placement, k)  # type: ignore[arg-type]
                i += k
                misses = 0
            elif misses == 2:
                return self.add_batch(PacketBatch(view, starts[i:], sizes[i:]))
            else:
                start = int(starts[i])
                if not self.add_packet(view[start : start + int(sizes[i])]):
                    return False
                i += 1
                misses += 1
        return True

    def _account_placed(self, heap: H, placement: Placement, k: int) -> None:
        """The first ``k`` packets ``placement`` predicted are in ``heap``'s buffer: the packet path's accounting."""
        end = min(placement.offset + k * placement.plen, placement.length)
        self._stats[PACKETS] += k
        ranges = heap.ranges
        if ranges is not None:
            ranges.ends[-1] = end
        heap.received = end
        if end == heap.length:  # (a heap offered for placement is never bad)
            self._finish_whole(heap)

    def _finish_whole(self, heap: H) -> None:
        """``heap`` holds all its bytes: it completes if its addresses fit in it, else it is bad."""
        if addresses_fit(heap.pointers, heap.hab, heap.length):
            self._table.remove(heap)
            self._last_heap = None  # a reference would keep its buffer from being recycled
            self._complete(heap)
        else:
            heap.bad = True

    # -- subclass hooks ----------------------------------------------------------------

    def _placement_buffer(self, heap: H) -> bytearray | None:
        """``heap``'s payload buffer if packets may be received straight into it (its full length)."""
        return None

    def _prepare_batch(self, batch: PacketBatch) -> None:
        """Called before a batch goes through :meth:`add_packet` or the run path (no-op)."""

    def _add_single_heaps(self, batch: PacketBatch, single: SingleHeaps) -> bool:
        """:meth:`add_batch` for a batch of mostly single-packet heaps (see :func:`.batch.single_packet_heaps`).

        The same result as :meth:`add_packet` on each packet in turn; this
        default is exactly that.
        """
        add_packet = self.add_packet
        for packet in batch:
            if not add_packet(packet):
                return False
        return True

    def _bulk_ready(self, heap: H, offset: int) -> bool:
        """Whether a run continuing ``heap`` at ``offset`` may bypass :meth:`add_packet` now."""
        return True

    def _bulk_write(self, heap: H, offset: int, plen: int, rows: npt.NDArray[np.uint8]) -> None:
        """Put ``rows`` (``k`` payloads of ``plen`` bytes) at ``offset`` of ``heap``, back to back."""
        raise NotImplementedError

    def _write(self, heap: H, offset: int, plen: int, view: memoryview, start: int) -> None:
        """Put the accepted payload ``view[start:]`` (``plen`` bytes) at ``offset`` of ``heap``."""
        raise NotImplementedError

    def _complete(self, heap: H) -> None:
        """``heap`` has every byte and its addresses fit (already out of the table)."""
        raise NotImplementedError

    def _stop(self) -> None:
        """A stop item arrived (its heap is already gone): flush the rest and stop."""
        raise NotImplementedError


def _copy_predicted(view: memoryview, starts: npt.NDArray[np.intp], placement: Placement, k: int) -> None:
    """Copy the payloads of the first ``k`` predicted packets, at ``starts`` of ``view``, into place."""
    buffer = placement.buffer
    offset = int(placement.offsets[0])
    plen = placement.plen
    full = k if int(placement.lengths[k - 1]) == plen else k - 1  # a heap's last payload may be shorter
    if full:
        first = int(starts[0])
        stride = int(starts[1]) - first if full > 1 else HEADER_SIZE + plen
        if full == 1 or (int(starts[full - 1]) - first == (full - 1) * stride and (np.diff(starts[:full]) == stride).all()):
            source = np.ndarray((full, plen), dtype=np.uint8, buffer=view, offset=first + HEADER_SIZE, strides=(stride, 1))
            target = np.frombuffer(buffer, dtype=np.uint8, count=full * plen, offset=offset)
            target.reshape(full, plen)[...] = source
            del target  # it pins the bytearray's size
        else:
            for j in range(full):
                start = int(starts[j]) + HEADER_SIZE
                buffer[offset + j * plen : offset + (j + 1) * plen] = view[start : start + plen]
    if full < k:
        start = int(starts[k - 1]) + HEADER_SIZE
        at = int(placement.offsets[k - 1])
        size = int(placement.lengths[k - 1])
        buffer[at : at + size] = view[start : start + size]
