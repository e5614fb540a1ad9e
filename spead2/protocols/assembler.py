"""Heap assembly: packets in, complete (or incomplete) heaps out.

Implements API.md §2.7 and PROTOCOL.md §9.2. Packets are grouped by heap cnt
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

The assembler is sans-IO: it never blocks, sleeps or looks at a clock; it
hands heaps to the ``deliver`` callable it is given and updates the stream's
statistics list in place.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Buffer, Callable
from typing import Protocol

from .._log import log_limited
from .constants import CTRL_STREAM_STOP, STREAM_CTRL_ID
from .flavour import Flavour
from .heaps import Heap, HeapBase, IncompleteHeap
from .packet import decode_packet
from .stats import (
    BATCHES,
    EXTRA_STATS,
    HEAPS,
    INCOMPLETE_HEAPS_EVICTED,
    INCOMPLETE_HEAPS_FLUSHED,
    MAX_BATCH,
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
_IMMEDIATE = 1 << 63

#: Most separate (non-touching) byte ranges an out-of-order heap may hold.
#: Honest reordering creates a handful; the cap keeps hostile packet patterns
#: from making range insertion quadratic. A packet that would open one more
#: range is rejected (and the heap ends up incomplete).
MAX_RANGES = 16384

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


class AssemblerConfig(Protocol):
    """What the assembler reads from a ``recv.StreamConfig``."""

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


class _LiveHeap:
    """A heap still being assembled.

    ``payload`` holds the bytes from offset 0 up to the furthest packet placed
    in it (gaps zero-filled). In out-of-order mode ``starts``/``ends`` are the
    sorted, disjoint, non-touching byte ranges received, and ``pending`` the
    packets held aside because they landed too far ahead of the data; in
    in-order mode the data are always exactly ``[0, received)``.
    """

    __slots__ = (
        "cnt", "hab", "length", "received", "payload", "pointers", "seen", "starts", "ends",
        "pending", "done", "spare",
    )

    def __init__(self, cnt: int, hab: int, length: int, spare: deque[bytearray]) -> None:
        self.cnt = cnt
        self.hab = hab
        self.length = length  # -1 while unsized
        self.received = 0
        self.payload = bytearray()
        self.pointers: list[int] = []
        #: The distinct words of ``pointers``, built when a second packet brings pointers.
        self.seen: set[int] | None = None
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.pending: list[tuple[int, bytes]] | None = None
        #: All bytes arrived but an item address lies beyond the heap: it can
        #: never be delivered complete, only evicted or flushed as incomplete.
        self.done = False
        #: The stream's recycled payload buffers.
        self.spare = spare

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
        if not size:
            spare = self.spare
            if spare and capacity == length:
                # A recycled buffer holds old bytes, not zeros: harmless, since
                # a heap is only delivered complete, with every byte written.
                payload = spare.pop()
                if len(payload) == capacity:
                    self.payload = payload
                    return payload
            payload = self.payload = bytearray(capacity)
        else:
            payload += bytes(capacity - size)
        return payload

    def extent(self, in_order: bool) -> int:
        """One past the furthest byte received."""
        if in_order:
            return self.received
        return self.ends[-1] if self.ends else 0

    def contiguous(self, in_order: bool) -> bool:
        """Whether the bytes received are exactly ``[0, received)``."""
        if in_order or not self.starts:
            return True
        return len(self.starts) == 1 and self.starts[0] == 0

    def ranges(self, in_order: bool) -> list[tuple[int, int]]:
        """Merged ``(start, end)`` byte ranges received."""
        if in_order:
            return [(0, self.received)] if self.received else []
        return list(zip(self.starts, self.ends, strict=True))

    def add_out_of_order(self, offset: int, data: memoryview) -> int:
        """Place a packet's payload anywhere in the heap.

        Returns the number of bytes that were new, or -1 if the packet is
        rejected: it carries nothing new (a duplicate); it would open more
        than :data:`MAX_RANGES` separate ranges; or it lands far ahead of the
        data (see :data:`LOOKAHEAD_SLACK`) *and* overlaps bytes already
        received, so that holding it aside would cost more than its new bytes.
        """
        plen = len(data)
        if plen == 0:
            return 0
        end = offset + plen
        starts = self.starts
        ends = self.ends
        payload = self.payload
        size = len(payload)
        far = offset > size and end > 2 * (self.received + plen) + LOOKAHEAD_SLACK
        if ends and ends[-1] == offset:
            ends[-1] = end  # the usual case: continues the furthest range
            new = plen
        elif not ends or ends[-1] < offset:
            if len(ends) >= MAX_RANGES:
                return -1
            starts.append(offset)
            ends.append(end)
            new = plen
        else:
            # Ranges [i, j) overlap or touch [offset, end).
            i = bisect_left(ends, offset)
            j = bisect_right(starts, end)
            if i == j:
                if len(ends) >= MAX_RANGES:
                    return -1
                starts.insert(i, offset)
                ends.insert(i, end)
                new = plen
            else:
                covered = 0
                for k in range(i, j):
                    covered += min(ends[k], end) - max(starts[k], offset)  # >= 0: they touch
                new = plen - covered
                if new == 0 or (far and covered):
                    return -1
                starts[i:j] = [min(starts[i], offset)]
                ends[i:j] = [max(ends[j - 1], end)]
        self.received += new
        if end <= size:
            payload[offset:end] = data
        elif not far:
            # Appends, straddles the end, or lands a little beyond it (gap zero-filled).
            payload = self.reserve(end, self.received)
            payload[offset:end] = data
        else:
            if self.pending is None:
                self.pending = []
            self.pending.append((offset, bytes(data)))
        return new

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


def _addresses_fit(pointers: list[int] | tuple[int, ...], hab: int, length: int) -> bool:
    """Whether every addressed pointer's address lies within a ``length``-byte payload."""
    mask = (1 << hab) - 1
    for word in pointers:
        if word < _IMMEDIATE and word & mask > length:
            return False
    return True


class HeapAssembler:
    """Turns the packets of one stream into heaps (see the module docstring).

    ``config`` is the stream's (already copied) ``recv.StreamConfig``,
    ``ring_config`` its ``recv.RingStreamConfig``; ``deliver`` receives every
    heap for the consumer; ``stats`` is the statistics list laid out as
    :func:`stream_stat_configs` describes, updated in place.
    """

    def __init__(
        self,
        config: AssemblerConfig,
        ring_config: AssemblerRingConfig,
        deliver: Callable[[HeapBase], None],
        stats: list[int],
    ) -> None:
        self._max_heaps = config.max_heaps
        self._substreams = config.substreams
        self._bug_compat = config.bug_compat
        self._allow_unsized = config.allow_unsized_heaps
        self._in_order = not config.allow_out_of_order
        self._contiguous_only = ring_config.contiguous_only
        self._keep_ranges = ring_config.incomplete_keep_payload_ranges
        self._deliver = deliver
        self._stats = stats
        self._invalid_index = len(config.stats)
        if len(stats) <= self._invalid_index:
            raise ValueError(
                f"stats has {len(stats)} entries; the stream needs {len(stream_stat_configs(config))}"
            )
        #: Live heaps, per substream, in creation order (dicts keep insertion order).
        self._live: dict[int, dict[int, _LiveHeap]] = {}
        #: Per heap-address width in bytes: the flavour its heaps are delivered with.
        self._flavours = [
            Flavour(4, 64, 8 * w, self._bug_compat) if 0 < w < 8 else None for w in range(9)
        ]
        #: Per address width: the exact word of an immediate stop item (None
        #: when stop items have no effect), found with a C-level ``in``.
        self._stop_words = (
            [
                _IMMEDIATE | (STREAM_CTRL_ID << (8 * w)) | CTRL_STREAM_STOP if 0 < w < 8 else -1
                for w in range(9)
            ]
            if config.stop_on_stop_item
            else None
        )
        self._stopped = False
        #: Payload buffers of dead heaps, for reuse (see RECYCLE_MIN).
        self._spare: deque[bytearray] = deque()

    @property
    def stopped(self) -> bool:
        """Whether a stop item or :meth:`flush` has ended the stream."""
        return self._stopped

    @property
    def live_heaps(self) -> int:
        """Number of partial heaps currently held (all substreams)."""
        return sum(len(live) for live in self._live.values())

    # -- packets -----------------------------------------------------------------

    def add_packet(self, data: Buffer) -> bool:
        """Process one packet; return False once a stop item has ended the stream.

        ``data`` is exactly one packet (a datagram, or one framed packet of a
        byte stream) as ``bytes``, ``bytearray`` or a byte-format
        ``memoryview`` (sliced, not copied: a heap's payload is the only
        copy made of the packet's bytes). Malformed packets are dropped, counted in
        ``invalid_packets`` and logged; nothing here raises for bad input.
        """
        if self._stopped:
            return False
        view = data if type(data) is memoryview else memoryview(data)
        decoded = decode_packet(view)
        stats = self._stats
        if decoded is None:
            stats[self._invalid_index] += 1
            return True
        cnt, length, offset, plen, hab, start, pointers = decoded
        stats[PACKETS] += 1
        if length < 0 and not self._allow_unsized:
            log_limited(_INFO, "asm-no-heaplen", "packet rejected because it has no HEAP_LEN")
            return True
        key = cnt % self._substreams
        live = self._live.get(key)
        heap = None if live is None else live.get(cnt)
        in_order = self._in_order
        stop_words = self._stop_words

        if heap is None:
            if offset == 0 and plen == length:
                # The whole heap in one packet: no live heap needed.
                stats[SINGLE_PACKET_HEAPS] += 1
                if pointers:
                    if stop_words is not None and stop_words[hab >> 3] in pointers:
                        self._stop()
                        return False
                    if not _addresses_fit(pointers, hab, length):
                        self._keep_unusable(cnt, hab, pointers, length)
                        return True
                stats[HEAPS] += 1
                self._deliver(Heap(cnt, self._flavours[hab >> 3], pointers, bytearray(view[start:])))  # type: ignore[arg-type]
                return True
            if offset != 0 and in_order:
                # A heap can only begin at offset 0 in order; silently dropped, as in the reference.
                return True
            if stop_words is not None and pointers and stop_words[hab >> 3] in pointers:
                self._stop()
                return False
            if live is None:
                live = self._live[key] = {}
            elif len(live) >= self._max_heaps:
                self._evict(live)
            heap = live[cnt] = _LiveHeap(cnt, hab, length, self._spare)
            if in_order:
                if plen:
                    heap.reserve(plen, plen)[:plen] = view[start:]
                    heap.received = plen
            else:
                heap.add_out_of_order(offset, view[start:])
            if pointers:
                heap.pointers += pointers
        else:
            if hab != heap.hab:
                log_limited(
                    _INFO, "asm-flavour",
                    "packet rejected because its flavour is inconsistent with the heap",
                )
                return True
            if length != heap.length and not self._reconcile_length(heap, length, offset + plen):
                return True
            if in_order:
                if offset != heap.received:
                    log_limited(
                        _WARNING, "asm-order",
                        "packet rejected because it is out-of-order in the heap (you might "
                        "need to set allow_out_of_order to true in the stream config)",
                    )
                    return True
                if plen:
                    end = offset + plen
                    payload = heap.payload
                    if end > len(payload):
                        payload = heap.reserve(end, end)
                    payload[offset:end] = view[start:]
                    heap.received = end
            elif heap.add_out_of_order(offset, view[start:]) < 0:
                return True
            if pointers:
                if stop_words is not None and stop_words[hab >> 3] in pointers:
                    del live[cnt]  # type: ignore[union-attr]  # the stop heap is discarded
                    self._stop()
                    return False
                heap.add_pointers(pointers)

        if heap.received == heap.length and not heap.done:
            self._complete(live, heap)
        return True

    def _reconcile_length(self, heap: _LiveHeap, length: int, end: int) -> bool:
        """Check a packet's HEAP_LENGTH (or its absence) against its heap's; False rejects it."""
        if length < 0:
            # A packet without HEAP_LENGTH joining a sized heap must still fit in it.
            if end > heap.length:
                log_limited(
                    _INFO, "asm-heaplen-overflow",
                    "packet rejected because payload would overflow given heap length",
                )
                return False
            return True
        if heap.length >= 0:
            log_limited(
                _INFO, "asm-heaplen-inconsistent",
                "packet rejected because its HEAP_LEN is inconsistent with the heap",
            )
            return False
        if length < heap.extent(self._in_order):
            log_limited(
                _INFO, "asm-heaplen-small",
                "packet rejected because its HEAP_LEN is too small for the heap",
            )
            return False
        heap.length = length  # an unsized heap learns its size
        return True

    def _keep_unusable(self, cnt: int, hab: int, pointers: tuple[int, ...], length: int) -> None:
        """A one-packet heap with an item address beyond its end.

        It can never be delivered complete: as in the reference, it stays live
        until evicted or flushed, and is then handled as an incomplete heap.
        """
        key = cnt % self._substreams
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = {}
        elif len(live) >= self._max_heaps:
            self._evict(live)
        heap = live[cnt] = _LiveHeap(cnt, hab, length, self._spare)
        heap.received = length
        heap.pointers += pointers
        if not self._in_order and length:
            heap.starts.append(0)
            heap.ends.append(length)
        heap.done = True

    # -- heaps leaving -------------------------------------------------------------

    def _remove(self, live: dict[int, _LiveHeap], heap: _LiveHeap) -> None:
        del live[heap.cnt]
        if not live:
            # Forget empty substreams: with many substreams, cnts seen once must not pile up.
            del self._live[heap.cnt % self._substreams]

    def _complete(self, live: dict[int, _LiveHeap] | None, heap: _LiveHeap) -> None:
        """A sized heap has all its bytes: deliver it, unless an address is out of range."""
        if not _addresses_fit(heap.pointers, heap.hab, heap.length):
            heap.done = True
            return
        self._remove(live, heap)  # type: ignore[arg-type]
        self._stats[HEAPS] += 1
        payload = heap.payload
        if heap.pending or len(payload) != heap.length:
            payload = heap.materialise(heap.length)
        recycle = self._spare if len(payload) >= RECYCLE_MIN else None
        self._deliver(Heap(heap.cnt, self._flavours[heap.hab >> 3], heap.pointers, payload, recycle))  # type: ignore[arg-type]

    def _finish_incomplete(self, heap: _LiveHeap) -> None:
        """Deliver or drop a heap that is leaving before completing (evicted or flushed)."""
        in_order = self._in_order
        flavour = self._flavours[heap.hab >> 3]
        assert flavour is not None
        if (
            heap.length < 0
            and heap.contiguous(in_order)
            and _addresses_fit(heap.pointers, heap.hab, heap.received)
        ):
            # An unsized heap is finished by its end: whatever arrived from 0 is the heap.
            self._deliver(Heap(heap.cnt, flavour, heap.pointers, heap.materialise(heap.received)))
        elif not self._contiguous_only:
            ranges = heap.ranges(in_order) if self._keep_ranges else []
            self._deliver(
                IncompleteHeap(heap.cnt, flavour, heap.pointers, heap.length, heap.received, ranges)
            )
        else:
            log_limited(
                _WARNING, "asm-incomplete",
                "dropped incomplete heap %d (%d/%d bytes of payload)",
                heap.cnt, heap.received, heap.length,
            )

    def _evict(self, live: dict[int, _LiveHeap]) -> None:
        """Make room in a full substream by pushing out its oldest-created heap."""
        heap = live.pop(next(iter(live)))
        stats = self._stats
        stats[INCOMPLETE_HEAPS_EVICTED] += 1
        stats[HEAPS] += 1
        self._finish_incomplete(heap)

    def _stop(self) -> None:
        """A stop item arrived: its heap is already gone; flush the rest and stop."""
        self.flush(deliver_incomplete=True)

    # -- stream events -------------------------------------------------------------

    def end_batch(self, n_packets: int) -> None:
        """A reader finished a batch of ``n_packets`` packets."""
        stats = self._stats
        stats[BATCHES] += 1
        if n_packets > stats[MAX_BATCH]:
            stats[MAX_BATCH] = n_packets

    def flush(self, deliver_incomplete: bool) -> None:
        """The stream is ending: account for every partial heap; further packets are ignored.

        Each is counted in ``incomplete_heaps_flushed`` and ``heaps``. With
        ``deliver_incomplete`` (an end caused by the data: end of input or a
        stop item) it is delivered like an evicted heap; otherwise (the user
        stopped the stream) it is silently discarded.
        """
        self._stopped = True
        stats = self._stats
        live_heaps = self._live
        self._live = {}
        for live in live_heaps.values():
            for heap in live.values():
                stats[INCOMPLETE_HEAPS_FLUSHED] += 1
                stats[HEAPS] += 1
                if deliver_incomplete:
                    self._finish_incomplete(heap)
