"""Heap assembly: packets in, complete (or incomplete) heaps out.

Implements the receive semantics of ``spead2.recv.Stream``. Packets are grouped by heap cnt
into live heaps, at most ``max_heaps`` per substream (``cnt % substreams``);
when a substream is full the oldest-created live heap is evicted. A sized
heap is delivered as soon as all its payload bytes have arrived.

Memory is proportional to the bytes actually received, whatever the packets
claim: a heap's payload buffer is allocated at its full HEAP_LENGTH only once
that is at most :data:`PREALLOCATE_RATIO` times the bytes it will then hold,
and until then it grows by doubling; in out-of-order mode a packet far beyond
the data received so far is held aside instead of stretching the buffer to
reach it. (Growing the buffer packet by packet instead costs a reallocation,
often a copy of everything so far, every few packets.) See
docs/differences.md ("Receive core").

The live-heap state machine (substreams, eviction, joining checks, ranges,
stop items, address checks) is :mod:`.live_heaps`, shared with chunk
placement; this module adds where the payload goes: a buffer per heap.

The assembler is sans-IO: it never blocks, sleeps or looks at a clock; it
hands heaps to the ``deliver`` callable it is given, updates the stream's
statistics list in place and tells its ``report`` callable why it rejected
what it rejected.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Buffer, Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .batch import PacketBatch, SingleHeaps
from .flavour import Flavour
from .heaps import Heap, HeapBase, IncompleteHeap
from .live_heaps import MAX_RANGES, LiveHeap, LiveHeapConfig, LiveHeapMachine, addresses_fit
from .packet import decode_packet
from .report import Report, ignore
from .stats import (
    EXTRA_STATS,
    HEAPS,
    PACKETS,
    SINGLE_PACKET_HEAPS,
    StreamStatConfig,
)

__all__ = [
    "HeapAssembler",
    "AssemblerConfig",
    "AssemblerRingConfig",
    "stream_stat_configs",
    "MAX_RANGES",
    "LOOKAHEAD_SLACK",
    "PREALLOCATE_RATIO",
]

_INFO = logging.INFO
_WARNING = logging.WARNING

#: In out-of-order mode, a packet may extend the payload buffer to at most
#: ``2 * (bytes received + its length) + LOOKAHEAD_SLACK``; one landing further
#: ahead is kept aside (one extra copy) until the heap is finished, so a
#: packet claiming a huge offset costs only its own size. (Such a packet is
#: rejected if it also overlaps data already received: honest senders never
#: do that, and it keeps the bytes held aside no more than the bytes received.)
LOOKAHEAD_SLACK = 65536

#: A heap's payload buffer jumps straight to HEAP_LENGTH bytes once that is at
#: most this many times the bytes it must then hold (a 1 MiB heap is allocated
#: whole at its first 9000-byte packet); otherwise it doubles. So a live heap
#: never holds more than this many times its bytes received.
PREALLOCATE_RATIO = 128

#: Payloads at least this large are recycled: when a delivered heap dies and
#: nothing else uses its buffer, the next heap of the same length reuses it.
#: A fresh allocation this large is a new memory mapping, whose every page
#: faults on first touch (measured: ~225 faults, about 0.2 ms, per 1 MiB heap).
RECYCLE_MIN = 1 << 17


#: What the assembler reads from a ``recv.StreamConfig``.
AssemblerConfig = LiveHeapConfig


class AssemblerRingConfig(Protocol):
    """What the assembler reads from a ``recv.RingStreamConfig``."""

    @property
    def contiguous_only(self) -> bool: ...
    @property
    def incomplete_keep_payload_ranges(self) -> bool: ...


def stream_stat_configs(config: AssemblerConfig) -> list[StreamStatConfig]:
    """Every statistic of a ring stream built from ``config``, in index order.

    Core statistics, then the config's custom ones, then the extras
    (``invalid_packets``) — the layout of the list the assembler updates.
    """
    return config.stats + [StreamStatConfig(name, mode) for name, mode in EXTRA_STATS]


class _LiveHeap(LiveHeap):
    """A heap being assembled into a payload buffer of its own.

    ``payload`` holds the bytes from offset 0 up to the furthest packet placed
    in it (gaps zero-filled); ``pending`` the packets held aside because they
    landed too far ahead of the data (out-of-order mode only).
    """

    __slots__ = ("payload", "pending", "spare", "hold")

    def __init__(self, cnt: int, hab: int, length: int, in_order: bool, spare: deque[bytearray]) -> None:
        super().__init__(cnt, hab, length, in_order)
        self.payload = bytearray()
        self.pending: list[tuple[int, bytes]] | None = None
        #: The stream's recycled payload buffers.
        self.spare = spare
        #: Whether the packet being added is held aside (set by :meth:`far`).
        self.hold = False

    def far(self, offset: int, plen: int) -> bool:
        """Whether a packet lands too far ahead to stretch the buffer (see :data:`LOOKAHEAD_SLACK`)."""
        end = offset + plen
        self.hold = hold = offset > len(self.payload) and end > 2 * (self.received + plen) + LOOKAHEAD_SLACK
        return hold

    def reserve(self, end: int, received: int) -> bytearray:
        """Make the payload buffer at least ``end`` bytes long, ``received`` bytes having arrived.

        See :data:`PREALLOCATE_RATIO`; the new bytes are zeros.
        """
        payload = self.payload
        size = len(payload)
        length = self.length
        if 0 <= length <= received * PREALLOCATE_RATIO:
            capacity = length
        else:
            capacity = max(end, 2 * size)
            if 0 <= length < capacity:
                capacity = length
        spare = self.spare
        if spare and capacity == length:
            # A recycled buffer holds old bytes, not zeros: harmless, since a
            # heap is only delivered complete, with every byte written (or, if
            # unsized, cut to the bytes received). Also taken when the buffer
            # grew by doubling first (small packets: 1472-byte packets reach
            # 1/PREALLOCATE_RATIO of a 1 MiB heap after six): the bytes so far
            # are copied over, which is cheaper than growing into fresh memory.
            recycled = spare.pop()
            if len(recycled) == capacity:
                if size:
                    recycled[:size] = payload
                self.payload = recycled
                return recycled
        if not size:
            payload = self.payload = bytearray(capacity)
        else:
            payload += bytes(capacity - size)
        return payload

    def write(self, offset: int, plen: int, data: memoryview) -> None:
        """Put an accepted payload at ``offset`` (``received`` already counts its new bytes)."""
        end = offset + plen
        payload = self.payload
        if end <= len(payload):
            payload[offset:end] = data
        elif self.ranges is None:
            self.reserve(end, end)[offset:end] = data
        elif not self.hold:
            # Appends, straddles the end, or lands a little beyond it (gap zero-filled).
            self.reserve(end, self.received)[offset:end] = data
        else:
            self.hold = False
            if self.pending is None:
                self.pending = []
            self.pending.append((offset, bytes(data)))

    def materialise(self, length: int) -> bytearray:
        """The payload as exactly ``length`` bytes, with any held-aside packets put in place."""
        payload = self.payload
        size = len(payload)
        if size < length:
            payload += bytes(length - size)
        elif size > length:
            del payload[length:]
        if self.pending:
            for offset, data in self.pending:
                payload[offset : offset + len(data)] = data
            self.pending = None
        return payload


class HeapAssembler(LiveHeapMachine[_LiveHeap]):
    """Turns the packets of one stream into heaps (see the module docstring).

    ``config`` is the stream's (already copied) ``recv.StreamConfig``,
    ``ring_config`` its ``recv.RingStreamConfig``; ``deliver`` receives every
    heap for the consumer (``deliver_many``, if given, receives lists of
    heaps in order instead, where a batch of single-packet heaps makes
    many at once); ``stats`` is the statistics list laid out as
    :func:`stream_stat_configs` describes, updated in place; ``report``
    receives every rejection with its reason (see :mod:`.report`).
    """

    def __init__(
        self,
        config: AssemblerConfig,
        ring_config: AssemblerRingConfig,
        deliver: Callable[[HeapBase], None],
        stats: list[int],
        report: Report = ignore,
        deliver_many: Callable[[list[HeapBase]], None] | None = None,
    ) -> None:
        invalid_index = len(config.stats)
        if len(stats) <= invalid_index:
            raise ValueError(
                f"stats has {len(stats)} entries; the stream needs {len(stream_stat_configs(config))}"
            )
        super().__init__(config, stats, report)
        self._bug_compat = config.bug_compat
        self._allow_unsized = config.allow_unsized_heaps
        self._contiguous_only = ring_config.contiguous_only
        self._keep_ranges = ring_config.incomplete_keep_payload_ranges
        self._deliver = deliver
        self._deliver_many = deliver_many
        self._invalid_index = invalid_index
        #: Per heap-address width in bytes: the flavour its heaps are delivered with.
        self._flavours = [
            Flavour(4, 64, 8 * w, self._bug_compat) if 0 < w < 8 else None for w in range(9)
        ]
        self._stopped = False
        #: Payload buffers of dead heaps, for reuse (see RECYCLE_MIN).
        self._spare: deque[bytearray] = deque()

    @property
    def stopped(self) -> bool:
        """Whether a stop item or :meth:`flush` has ended the stream."""
        return self._stopped

    # -- packets -----------------------------------------------------------------

    def add_packet(self, data: Buffer) -> bool:
        """Process one packet; return False once a stop item has ended the stream.

        ``data`` is exactly one packet (a datagram, or one framed packet of a
        byte stream) as ``bytes``, ``bytearray`` or a byte-format
        ``memoryview`` (sliced, not copied: a heap's payload is the only
        copy made of the packet's bytes). Malformed packets are dropped, counted in
        ``invalid_packets`` and reported; nothing here raises for bad input.
        """
        if self._stopped:
            return False
        view = data if type(data) is memoryview else memoryview(data)
        decoded = decode_packet(view, self._report)
        stats = self._stats
        if decoded is None:
            stats[self._invalid_index] += 1
            return True
        cnt, length, offset, plen, hab, start, pointers = decoded
        stats[PACKETS] += 1
        if length < 0 and not self._allow_unsized:
            self._report(_INFO, "heap-no-heaplen", "packet rejected because it has no HEAP_LEN")
            return True
        heap = self._table.get(cnt)
        if heap is not None:
            return self._join(heap, length, offset, plen, hab, start, pointers, view)
        stop_words = self._stop_words
        if offset == 0 and plen == length:
            # The whole heap in one packet: no live heap needed.
            stats[SINGLE_PACKET_HEAPS] += 1
            if pointers:
                if stop_words is not None and stop_words[hab >> 3] in pointers:
                    self._stop()
                    return False
                if not addresses_fit(pointers, hab, length):
                    self._keep_unusable(cnt, hab, pointers, length)
                    return True
            stats[HEAPS] += 1
            self._deliver(Heap(cnt, self._flavours[hab >> 3], pointers, bytearray(view[start:])))  # type: ignore[arg-type]
            return True
        in_order = self._in_order
        if offset != 0 and in_order:
            # A heap can only begin at offset 0 in order; silently dropped, as in the reference.
            return True
        if stop_words is not None and pointers and stop_words[hab >> 3] in pointers:
            self._stop()
            return False
        heap = _LiveHeap(cnt, hab, length, in_order, self._spare)
        self._insert(heap)
        if plen:
            if in_order:
                heap.reserve(plen, plen)[:plen] = view[start:]
                heap.received = plen
            else:
                heap.far(offset, plen)
                heap.received = heap.ranges.add(offset, plen)  # type: ignore[union-attr]
                heap.write(offset, plen, view[start:])
        if pointers:
            heap.pointers += pointers
        if heap.received == heap.length:
            if addresses_fit(heap.pointers, hab, length):
                self._table.remove(heap)
                self._complete(heap)
            else:
                heap.bad = True
        return True

    def _add_single_heaps(self, batch: PacketBatch, single: SingleHeaps) -> bool:
        """A batch of mostly single-packet heaps: each fast one is one ``Heap``, nothing more.

        Packets that are not fast, or whose heap is live, take
        :meth:`add_packet` (the heaps made so far are delivered first, so
        the order is the packet path's).
        """
        if self._stopped:
            return False
        flavour = self._flavours[single.hab >> 3]
        assert flavour is not None
        shared = single.shared
        rows: list[list[int]] = single.rest.tolist() if shared is None else []
        cnts = single.cnt
        lengths = single.length
        payload_start = single.payload_start
        payload_end = single.payload_end
        view = batch.view
        table = self._table
        live = len(table)
        add_packet = self.add_packet
        heaps: list[HeapBase] = []
        # With the same pointers in every heap, what ItemGroup.update asks
        # each heap (its unique pointers, its items' layout for its length)
        # is worked out once for the batch and shared (read-only) by its heaps.
        unique = tuple(dict.fromkeys(shared)) if shared is not None else None
        layout: list[tuple[int, int, int]] | None = None
        layout_length = -1
        for i, fast in enumerate(single.fast):
            cnt = cnts[i]
            if fast and (not live or table.get(cnt) is None):
                heap = Heap(
                    cnt, flavour, shared if shared is not None else tuple(rows[i]),
                    bytearray(view[payload_start[i] : payload_end[i]]),
                )
                if unique is not None:
                    heap._unique = unique
                    if lengths[i] != layout_length:
                        layout = heap._addressed()
                        layout_length = lengths[i]
                    else:
                        heap._layout = layout
                heaps.append(heap)
                continue
            if heaps:
                self._deliver_single(heaps)
                heaps = []
            if not add_packet(batch[i]):
                return False
            live = len(table)
        if heaps:
            self._deliver_single(heaps)
        return True

    def _deliver_single(self, heaps: list[HeapBase]) -> None:
        """Account for and deliver heaps of one packet each, made by :meth:`_add_single_heaps`."""
        stats = self._stats
        k = len(heaps)
        stats[PACKETS] += k
        stats[SINGLE_PACKET_HEAPS] += k
        stats[HEAPS] += k
        if self._deliver_many is not None:
            self._deliver_many(heaps)
        else:
            deliver = self._deliver
            for heap in heaps:
                deliver(heap)

    def _write(self, heap: _LiveHeap, offset: int, plen: int, view: memoryview, start: int) -> None:
        if plen:
            end = offset + plen
            payload = heap.payload
            if end <= len(payload):
                payload[offset:end] = view[start:]  # the usual case, inline
            else:
                heap.write(offset, plen, view[start:])

    def _placement_buffer(self, heap: _LiveHeap) -> bytearray | None:
        # Only a buffer of the heap's full length: it is never reallocated
        # (which would move it from under the kernel's writes) or grown.
        payload = heap.payload
        if self._stopped or heap.pending or len(payload) != heap.length:
            return None
        return payload

    def _bulk_ready(self, heap: _LiveHeap, offset: int) -> bool:
        # Out of order, a run continuing a packet held aside stays aside (see LOOKAHEAD_SLACK).
        return offset <= len(heap.payload)

    def _bulk_write(self, heap: _LiveHeap, offset: int, plen: int, rows: npt.NDArray[np.uint8]) -> None:
        end = offset + len(rows) * plen
        payload = heap.payload
        if end > len(payload):
            payload = heap.reserve(end, end if heap.ranges is None else heap.received)
        target = np.frombuffer(payload, dtype=np.uint8)[offset:end].reshape(rows.shape)
        target[...] = rows
        del target  # it pins the bytearray's size

    def _insert(self, heap: _LiveHeap) -> None:
        evicted = self._table.insert(heap)
        if evicted is not None:
            self._finish_incomplete(evicted)

    def _keep_unusable(self, cnt: int, hab: int, pointers: tuple[int, ...], length: int) -> None:
        """A one-packet heap with an item address beyond its end.

        It can never be delivered complete: as in the reference, it stays live
        until evicted or flushed, and is then handled as an incomplete heap.
        """
        heap = _LiveHeap(cnt, hab, length, self._in_order, self._spare)
        self._insert(heap)
        heap.received = length
        heap.pointers += pointers
        if heap.ranges is not None and length:
            heap.ranges.add(0, length)
        heap.bad = True

    # -- heaps leaving -------------------------------------------------------------

    def _complete(self, heap: _LiveHeap) -> None:
        """A sized heap has all its bytes and its addresses fit: deliver it."""
        self._stats[HEAPS] += 1
        payload = heap.payload
        if heap.pending or len(payload) != heap.length:
            payload = heap.materialise(heap.length)
        recycle = self._spare if len(payload) >= RECYCLE_MIN else None
        self._deliver(Heap(heap.cnt, self._flavours[heap.hab >> 3], heap.pointers, payload, recycle))  # type: ignore[arg-type]

    def _finish_incomplete(self, heap: _LiveHeap) -> None:
        """Deliver or drop a heap that is leaving before completing (evicted or flushed)."""
        flavour = self._flavours[heap.hab >> 3]
        assert flavour is not None
        if heap.length < 0 and heap.contiguous() and addresses_fit(heap.pointers, heap.hab, heap.received):
            # An unsized heap is finished by its end: whatever arrived from 0 is the heap.
            self._deliver(Heap(heap.cnt, flavour, heap.pointers, heap.materialise(heap.received)))
        elif not self._contiguous_only:
            ranges = heap.range_pairs() if self._keep_ranges else []
            self._deliver(
                IncompleteHeap(heap.cnt, flavour, heap.pointers, heap.length, heap.received, ranges)
            )
        else:
            self._report(
                _WARNING, "heap-incomplete",
                "dropped incomplete heap %d (%d/%d bytes of payload)",
                heap.cnt, heap.received, heap.length,
            )

    def _stop(self) -> None:
        """A stop item arrived: its heap is already gone; flush the rest and stop."""
        self.flush(deliver_incomplete=True)

    # -- stream events -------------------------------------------------------------

    def flush(self, deliver_incomplete: bool) -> None:
        """The stream is ending: account for every partial heap; further packets are ignored.

        Each is counted in ``incomplete_heaps_flushed`` and ``heaps``. With
        ``deliver_incomplete`` (an end caused by the data: end of input or a
        stop item) it is delivered like an evicted heap; otherwise (the user
        stopped the stream) it is silently discarded.
        """
        self._stopped = True
        for heap in self._table.flush():
            if deliver_incomplete:
                self._finish_incomplete(heap)
