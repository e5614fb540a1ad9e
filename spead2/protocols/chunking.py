"""Chunk placement: packets in, heap payloads written straight into pre-allocated chunks.

Implements the packet side of API.md §2.9 (chunk streams) sans-IO. Packets are
grouped into live heaps exactly as :mod:`.assembler` does (substreams,
``max_heaps`` eviction, in-order or out-of-order, stop items), but a heap's
payload is never assembled on its own: on the heap's first packet the *place
function* says which chunk it belongs to and where, and every packet's
payload is copied once, directly into that chunk's ``data``.

The placer keeps a window of at most ``max_chunks`` consecutive chunk IDs. A
heap for an ID beyond the window's head advances it: chunks falling off the
tail are released (in ascending order) and the new IDs are obtained, the gap
back-filled up to the window size (only IDs >= 0). A heap for an ID below the
tail is *too old*. Chunks come from, and go back to, a :class:`ChunkSource`
(the stream's free and data rings, or a chunk stream group).

Sans-IO: nothing here blocks. When the source cannot supply a chunk now
(free ring empty, a group waiting for its members), the placer holds the
packet, queues whatever arrives next (copied: the caller reuses its buffers)
and reports :attr:`ChunkPlacer.blocked`; the stream waits for the source and
calls :meth:`ChunkPlacer.resume`.

Unlike the reference, everything the place function returns is bounds
checked (API.md §8.9): a heap that would land outside the chunk's ``data``,
``present`` or ``extra`` is dropped and counted in ``rejected_heaps``.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Buffer
from typing import Any, Final, Protocol

from .._log import log_limited
from .assembler import MAX_RANGES, AssemblerConfig
from .constants import (
    CTRL_STREAM_STOP,
    HEAP_CNT_ID,
    HEAP_LENGTH_ID,
    PAYLOAD_LENGTH_ID,
    PAYLOAD_OFFSET_ID,
    STREAM_CTRL_ID,
)
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
    "ChunkPlacer",
    "ChunkSource",
    "ChunkConfigLike",
    "PlaceFunction",
    "Placement",
    "NOT_READY",
    "TOO_OLD",
    "SOURCE_STOPPED",
    "RELEASE_ALL",
    "CHUNK_STATS",
    "chunk_stream_stat_configs",
]

_INFO = logging.INFO
_WARNING = logging.WARNING
_IMMEDIATE = 1 << 63
_UINT64_LIMIT = 1 << 64

#: The statistics a chunk stream appends after the custom ones, in the reference's order.
CHUNK_STATS: Final[tuple[tuple[str, StreamStatConfig.Mode], ...]] = (
    ("too_old_heaps", StreamStatConfig.Mode.COUNTER),
    ("rejected_heaps", StreamStatConfig.Mode.COUNTER),
)

#: :meth:`ChunkSource.release` tail meaning "every chunk" (the placer has stopped).
RELEASE_ALL: Final = 1 << 64


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`ChunkSource.acquire`: no chunk available now; wait and retry.
NOT_READY: Final = _Sentinel("NOT_READY")
#: :meth:`ChunkSource.acquire`: that chunk ID has already left (a group moved on).
TOO_OLD: Final = _Sentinel("TOO_OLD")
#: :meth:`ChunkSource.acquire`: no chunk will ever come (the free ring was stopped).
SOURCE_STOPPED: Final = _Sentinel("SOURCE_STOPPED")


def chunk_stream_stat_configs(config: AssemblerConfig) -> list[StreamStatConfig]:
    """Every statistic of a chunk stream built from ``config``, in index order.

    Core statistics, the config's custom ones, ``too_old_heaps`` and
    ``rejected_heaps`` (the reference's layout), then our extras
    (``invalid_packets``, ``skipped_frames``).
    """
    return config.stats + [
        StreamStatConfig(name, mode) for name, mode in CHUNK_STATS + EXTRA_STATS
    ]


class ChunkConfigLike(Protocol):
    """What the placer reads from a ``recv.ChunkStreamConfig``."""

    @property
    def items(self) -> list[int]: ...
    @property
    def max_chunks(self) -> int: ...
    @property
    def max_heap_extra(self) -> int: ...
    @property
    def packet_presence_payload_size(self) -> int: ...


#: What a place function returns: ``(chunk_id, heap_index, heap_offset,
#: extra_offset, extra_size)``; ``chunk_id < 0`` rejects the heap.
Placement = tuple[int, int, int, int, int]


class PlaceFunction(Protocol):
    """The stream's place callback, adapted (a C function through ctypes, or Python)."""

    #: Scratch buffer of ``max_heap_extra`` bytes the callback may fill; the
    #: placer copies ``extra_size`` bytes of it into the chunk's ``extra``.
    extra: memoryview

    def __call__(self, packet: memoryview, items: list[int]) -> Placement:
        """Place the heap whose first received packet is ``packet``.

        ``items`` holds, per ``ChunkStreamConfig.items`` entry, the immediate
        value of that item in the packet or -1. Never raises: a failing
        callback yields a negative ``chunk_id``.
        """
        ...

    def take_stats(self) -> list[int] | None:
        """Statistic increments the callback made since the last call (``None`` if none)."""
        ...


class ChunkSource(Protocol):
    """Where a placer's chunks come from and go back to.

    A chunk is any object whose ``data``, ``present`` and ``extra``
    attributes are writable buffers (``extra`` may be ``None``).
    """

    def acquire(self, chunk_id: int) -> Any:
        """The chunk for ``chunk_id`` (IDs are asked for in ascending order).

        Or :data:`NOT_READY` (try again after waiting), :data:`TOO_OLD` (skip
        this ID), :data:`SOURCE_STOPPED` (no chunk will ever come).
        """
        ...

    def release(self, tail: int) -> None:
        """The placer no longer uses chunks below ``tail`` (:data:`RELEASE_ALL`: any chunk)."""
        ...


class _Slot:
    """One chunk of the window, as byte views. ``live`` turns False when it leaves."""

    __slots__ = ("chunk_id", "chunk", "data", "present", "extra", "live", "data_size", "present_size")

    def __init__(self, chunk_id: int, chunk: Any) -> None:
        self.chunk_id = chunk_id
        self.chunk = chunk
        self.live = True
        self.data = _byte_view(chunk, "data")
        self.present = _byte_view(chunk, "present")
        self.data_size = len(self.data)
        self.present_size = len(self.present)
        extra = getattr(chunk, "extra", None)
        self.extra = _byte_view(chunk, "extra") if extra is not None else None


_EMPTY = memoryview(bytearray())


def _byte_view(chunk: Any, name: str) -> memoryview:
    """A writable, flat byte view of one of ``chunk``'s buffers (empty if unusable).

    The rings refuse chunks without ``data``/``present``, but the user may
    still change them while the chunk is queued; an unusable buffer must
    not break the receive path, only drop the heaps aimed at it (they fail
    the bounds checks).
    """
    obj = getattr(chunk, name, None)
    try:
        view = memoryview(obj).cast("B")  # type: ignore[arg-type]
        if view.readonly:
            raise BufferError("read-only")
        return view
    except (TypeError, ValueError, BufferError) as exc:
        log_limited(
            _WARNING, f"chunk-{name}",
            "chunk %s buffer is not a writable contiguous buffer (%s): heaps placed in it "
            "are dropped", name, exc,
        )
        return _EMPTY


class _ChunkHeap:
    """A heap still receiving packets.

    ``slot`` is the chunk it is written into (``None`` for a heap that was
    rejected or too old at placement: its packets are only accounted).
    In out-of-order mode ``starts``/``ends`` are the sorted, disjoint,
    non-touching byte ranges received.
    """

    __slots__ = (
        "cnt", "hab", "length", "received", "slot", "base", "index", "starts", "ends", "bad", "pointers",
    )

    def __init__(
        self, cnt: int, hab: int, length: int, slot: _Slot | None, base: int, index: int,
        pointers: tuple[int, ...],
    ) -> None:
        self.cnt = cnt
        #: The first packet's item pointers (other than the per-packet fields).
        self.pointers = pointers
        self.hab = hab
        self.length = length
        self.received = 0
        self.slot = slot
        self.base = base
        self.index = index
        self.starts: list[int] = []
        self.ends: list[int] = []
        #: An item address lies beyond the heap: it can never complete.
        self.bad = False

    def add_range(self, offset: int, plen: int) -> int:
        """Record ``[offset, offset + plen)`` as received (out-of-order mode).

        Returns the number of new bytes, or -1 if the packet is rejected: a
        duplicate, or it would open more than :data:`MAX_RANGES` ranges.
        """
        end = offset + plen
        starts = self.starts
        ends = self.ends
        if ends and ends[-1] == offset:
            ends[-1] = end
            return plen
        if not ends or ends[-1] < offset:
            if len(ends) >= MAX_RANGES:
                return -1
            starts.append(offset)
            ends.append(end)
            return plen
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
            covered += min(ends[k], end) - max(starts[k], offset)
        new = plen - covered
        if new == 0:
            return -1
        starts[i:j] = [min(starts[i], offset)]
        ends[i:j] = [max(ends[j - 1], end)]
        return new


def _addresses_fit(pointers: tuple[int, ...], hab: int, length: int) -> bool:
    mask = (1 << hab) - 1
    for word in pointers:
        if word < _IMMEDIATE and word & mask > length:
            return False
    return True


class ChunkPlacer:
    """Places the packets of one stream into chunks (see the module docstring).

    ``config`` is the stream's ``recv.StreamConfig`` (copied), ``chunk_config``
    its ``recv.ChunkStreamConfig``; ``place`` is the adapted place callback;
    ``source`` supplies and takes back chunks; ``stats`` is the statistics
    list laid out as :func:`chunk_stream_stat_configs` describes, updated in
    place.
    """

    def __init__(
        self,
        config: AssemblerConfig,
        chunk_config: ChunkConfigLike,
        place: PlaceFunction,
        source: ChunkSource,
        stats: list[int],
    ) -> None:
        self._max_heaps = config.max_heaps
        self._substreams = config.substreams
        self._in_order = not config.allow_out_of_order
        self._stat_modes = [stat.mode for stat in chunk_stream_stat_configs(config)]
        if len(stats) < len(self._stat_modes):
            raise ValueError(
                f"stats has {len(stats)} entries; the stream needs {len(self._stat_modes)}"
            )
        n_custom = len(config.stats)
        self._too_old_index = n_custom
        self._rejected_index = n_custom + 1
        self._invalid_index = n_custom + 2
        self._stats = stats
        self._place = place
        self._source = source
        self._max_chunks = chunk_config.max_chunks
        self._max_extra = chunk_config.max_heap_extra
        self._pp = chunk_config.packet_presence_payload_size
        items = list(chunk_config.items)
        self._item_template = [-1] * len(items)
        #: Item ID -> positions in ``items`` wanted from ordinary immediates.
        self._wanted: dict[int, list[int]] = {}
        #: Positions of the per-packet fields, which the decoder strips: (positions, field).
        self._special: list[tuple[int, int]] = []
        special_ids = {HEAP_CNT_ID: 0, HEAP_LENGTH_ID: 1, PAYLOAD_OFFSET_ID: 2, PAYLOAD_LENGTH_ID: 3}
        for pos, item_id in enumerate(items):
            if item_id in special_ids:
                self._special.append((pos, special_ids[item_id]))
            else:
                self._wanted.setdefault(item_id, []).append(pos)
        self._stop_words = (
            [
                _IMMEDIATE | (STREAM_CTRL_ID << (8 * w)) | CTRL_STREAM_STOP if 0 < w < 8 else -1
                for w in range(9)
            ]
            if config.stop_on_stop_item
            else None
        )
        #: Live heaps per substream, in creation order.
        self._live: dict[int, dict[int, _ChunkHeap]] = {}
        #: The window: chunk ID -> slot, in ascending ID order.
        self._slots: dict[int, _Slot] = {}
        self._head = -1
        self._tail = 0
        #: While blocked: the packet waiting for a chunk and its placement.
        self._held: tuple[bytes, Placement] | None = None
        self._queue: deque[bytes] = deque()
        self._stopped = False

    # -- state -----------------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        """Whether a packet is waiting for a chunk the source could not supply yet."""
        return self._held is not None

    @property
    def stopped(self) -> bool:
        """Whether a stop item or :meth:`stop` has ended the placer."""
        return self._stopped

    @property
    def window(self) -> tuple[int, int]:
        """``(tail, head)``: chunk IDs below ``tail`` are too old; ``head`` is the newest."""
        return self._tail, self._head

    @property
    def live_chunk_ids(self) -> list[int]:
        """IDs of the chunks currently held, ascending."""
        return list(self._slots)

    @property
    def live_heaps(self) -> int:
        """Number of partial heaps currently held (all substreams)."""
        return sum(len(live) for live in self._live.values())

    # -- packets -----------------------------------------------------------------------

    def add_packet(self, data: Buffer) -> bool:
        """Process one packet; return False once the stream must stop.

        ``data`` is exactly one packet. While :attr:`blocked`, packets are
        copied and queued in arrival order. Malformed packets are dropped,
        counted in ``invalid_packets`` and logged; nothing here raises for bad input.
        """
        if self._stopped:
            return False
        if self._held is not None:
            self._queue.append(bytes(data))
            return True
        return self._process(data if type(data) is memoryview else memoryview(data))

    def resume(self) -> bool:
        """Retry the held packet and then the queued ones; False once the stream must stop.

        Call after the source may have become able to supply chunks. The
        placer may block again (check :attr:`blocked`).
        """
        held = self._held
        if held is None or self._stopped:
            return not self._stopped
        self._held = None
        packet, placement = held
        view = memoryview(packet)
        decoded = decode_packet(view)
        assert decoded is not None  # it was decoded before being held
        if not self._new_heap(view, decoded, placement):
            return False
        queue = self._queue
        while queue and self._held is None:
            if not self._process(memoryview(queue.popleft())):
                return False
        return True

    def _process(self, view: memoryview) -> bool:
        decoded = decode_packet(view)
        stats = self._stats
        if decoded is None:
            stats[self._invalid_index] += 1
            return True
        cnt, length, offset, plen, hab, start, pointers = decoded
        stats[PACKETS] += 1
        if length < 0:
            # Chunk streams need every heap's size up front (the reference
            # forces allow_unsized_heaps off for them).
            log_limited(_INFO, "chunk-no-heaplen", "packet rejected because it has no HEAP_LEN")
            return True
        live = self._live.get(cnt % self._substreams)
        heap = None if live is None else live.get(cnt)
        if heap is None:
            return self._new_heap(view, decoded, None)
        if hab != heap.hab:
            log_limited(
                _INFO, "chunk-flavour", "packet rejected because its flavour is inconsistent with the heap"
            )
            return True
        if length != heap.length:
            log_limited(
                _INFO, "chunk-heaplen-inconsistent",
                "packet rejected because its HEAP_LEN is inconsistent with the heap",
            )
            return True
        if self._in_order:
            if offset != heap.received:
                log_limited(
                    _WARNING, "chunk-order",
                    "packet rejected because it is out-of-order in the heap (you might "
                    "need to set allow_out_of_order to true in the stream config)",
                )
                return True
            heap.received += plen
        elif plen:
            new = heap.add_range(offset, plen)
            if new < 0:
                return True
            heap.received += new
        if pointers and pointers != heap.pointers:
            # (With repeat_pointers every packet repeats the first one's
            # pointers, which were checked when the heap began.)
            stop_words = self._stop_words
            if stop_words is not None and stop_words[hab >> 3] in pointers:
                del live[cnt]  # type: ignore[union-attr]  # the stop heap is discarded
                if not live:
                    del self._live[cnt % self._substreams]
                self._stop_item()
                return False
            if not heap.bad and not _addresses_fit(pointers, hab, length):
                heap.bad = True
        slot = heap.slot
        if slot is not None and slot.live:
            if plen:
                base = heap.base + offset
                slot.data[base : base + plen] = view[start:]
            if self._pp:
                slot.present[heap.index + offset // self._pp] = 1
        if heap.received == length and not heap.bad:
            self._complete(live, heap)  # type: ignore[arg-type]
        return True

    def _new_heap(
        self, view: memoryview, decoded: tuple[Any, ...], placement: Placement | None
    ) -> bool:
        """The first packet of a heap: place it, then write it (``placement`` set when resuming)."""
        cnt, length, offset, plen, hab, start, pointers = decoded
        stats = self._stats
        if placement is None:
            if offset != 0 and self._in_order:
                # A heap can only begin at offset 0 in order; silently dropped, as in the reference.
                return True
            stop_words = self._stop_words
            if pointers and stop_words is not None and stop_words[hab >> 3] in pointers:
                if offset == 0 and plen == length:
                    stats[SINGLE_PACKET_HEAPS] += 1
                # The stop heap is offered to place like any heap (so a callback
                # sees it, as with the reference) but never written: it only
                # counts in rejected_heaps when place leaves it unplaced.
                if self._call_place(view, cnt, length, offset, plen, hab, pointers)[0] < 0:
                    stats[self._rejected_index] += 1
                self._stop_item()
                return False
            placement = self._call_place(view, cnt, length, offset, plen, hab, pointers)
        chunk_id, heap_index, heap_offset, extra_offset, extra_size = placement
        slot: _Slot | None = None
        if chunk_id < 0:
            stats[self._rejected_index] += 1
        else:
            found: Any
            if self._tail <= chunk_id <= self._head:
                found = self._slots.get(chunk_id, TOO_OLD)  # the usual case: a live chunk
            else:
                found = self._slot_for(chunk_id)
            if found is NOT_READY:
                self._held = (bytes(view), placement)
                return True
            if found is SOURCE_STOPPED:
                log_limited(
                    _WARNING, "chunk-free-stopped",
                    "free chunk ringbuffer stopped: no chunk for heap %d; stopping the stream", cnt,
                )
                self.stop()
                return False
            if found is TOO_OLD:
                stats[self._too_old_index] += 1
            elif (
                # Fast check for the usual case; _fits does the full one (and logs).
                (extra_size or self._pp or heap_index >= found.present_size or heap_offset + length > found.data_size)
                and not self._fits(found, cnt, length, heap_index, heap_offset, extra_offset, extra_size)
            ):
                stats[self._rejected_index] += 1
            else:
                slot = found
                if extra_size:
                    found.extra[extra_offset : extra_offset + extra_size] = self._place.extra[:extra_size]

        single = offset == 0 and plen == length
        if single:
            stats[SINGLE_PACKET_HEAPS] += 1
        bad = False
        if pointers:
            mask = (1 << hab) - 1
            for word in pointers:
                if word < _IMMEDIATE and word & mask > length:
                    bad = True  # an item address beyond the heap: it can never complete
                    break
        if slot is not None:
            if plen:
                base = heap_offset + offset
                slot.data[base : base + plen] = view[start:]
            if self._pp:
                slot.present[heap_index + offset // self._pp] = 1
        if single and not bad:
            stats[HEAPS] += 1
            if slot is not None and not self._pp:
                slot.present[heap_index] = 1
            return True
        # A live heap, so that later packets find their placement (even a
        # rejected heap's: place is called once per heap, as in the reference).
        key = cnt % self._substreams
        live = self._live.get(key)
        if live is None:
            live = self._live[key] = {}
        elif len(live) >= self._max_heaps:
            self._evict(live)
        heap = live[cnt] = _ChunkHeap(cnt, hab, length, slot, heap_offset, heap_index, pointers)
        heap.bad = bad
        if self._in_order:
            heap.received = plen
        elif plen:
            heap.add_range(offset, plen)
            heap.received = plen
        return True

    def _call_place(
        self, view: memoryview, cnt: int, length: int, offset: int, plen: int, hab: int,
        pointers: tuple[int, ...],
    ) -> Placement:
        items = self._item_template[:]
        if items:
            for pos, field in self._special:
                items[pos] = (cnt, length, offset, plen)[field]
            wanted = self._wanted
            if wanted and pointers:
                id_mask = (1 << (63 - hab)) - 1
                mask = (1 << hab) - 1
                for word in pointers:
                    if word >= _IMMEDIATE:
                        positions = wanted.get((word >> hab) & id_mask)
                        if positions is not None:
                            value = word & mask
                            for pos in positions:
                                items[pos] = value  # the last occurrence wins
        return self._place(view, items)

    def _fits(
        self, slot: _Slot, cnt: int, length: int, heap_index: int, heap_offset: int,
        extra_offset: int, extra_size: int,
    ) -> bool:
        """Bounds-check a placement against the chunk (the reference does not: API.md §8.9)."""
        data_size = len(slot.data)
        if heap_offset + length > data_size:
            log_limited(
                _WARNING, "chunk-bounds-data",
                "place callback put heap %d at bytes [%d, %d) of chunk %d, whose data has %d "
                "bytes: heap dropped (counted in rejected_heaps)",
                cnt, heap_offset, heap_offset + length, slot.chunk_id, data_size,
            )
            return False
        last = heap_index + (max(length, 1) - 1) // self._pp if self._pp else heap_index
        if last >= len(slot.present):
            log_limited(
                _WARNING, "chunk-bounds-present",
                "place callback gave heap %d heap_index %d, but chunk %d's present has %d "
                "entries (%d needed): heap dropped (counted in rejected_heaps)",
                cnt, heap_index, slot.chunk_id, len(slot.present), last + 1,
            )
            return False
        if extra_size:
            extra = slot.extra
            if extra_size > self._max_extra or extra is None or extra_offset + extra_size > len(extra):
                log_limited(
                    _WARNING, "chunk-bounds-extra",
                    "place callback asked for %d extra bytes at offset %d for heap %d, but "
                    "max_heap_extra is %d and chunk %d's extra has %d bytes: heap dropped "
                    "(counted in rejected_heaps)",
                    extra_size, extra_offset, cnt, self._max_extra, slot.chunk_id,
                    0 if extra is None else len(extra),
                )
                return False
        return True

    # -- the window --------------------------------------------------------------------

    def _slot_for(self, chunk_id: int) -> Any:
        """The slot for ``chunk_id``, advancing the window if needed.

        Or :data:`TOO_OLD`, :data:`NOT_READY`, :data:`SOURCE_STOPPED`.
        """
        if chunk_id < self._tail:
            return TOO_OLD
        if chunk_id <= self._head:
            return self._slots.get(chunk_id, TOO_OLD)
        new_tail = chunk_id - self._max_chunks + 1
        if new_tail > self._tail:
            self._release_below(new_tail)
            self._tail = new_tail
            self._source.release(new_tail)
        source = self._source
        for next_id in range(max(self._head + 1, self._tail), chunk_id + 1):
            chunk = source.acquire(next_id)
            if chunk is NOT_READY or chunk is SOURCE_STOPPED:
                return chunk
            if chunk is not TOO_OLD:
                self._slots[next_id] = _Slot(next_id, chunk)
            self._head = next_id
        return self._slots.get(chunk_id, TOO_OLD)

    def _release_below(self, tail: int) -> None:
        """Mark the slots below ``tail`` as gone; heaps still writing to them are orphaned."""
        slots = self._slots
        while slots:
            first = next(iter(slots))
            if first >= tail:
                break
            slots.pop(first).live = False

    def flush_until(self, tail: int) -> None:
        """Give up every chunk below ``tail`` (a lossy group moving on without this stream)."""
        if tail <= self._tail or self._stopped:
            return
        self._release_below(tail)
        self._tail = tail
        if self._head < tail - 1:
            self._head = tail - 1
        self._source.release(tail)

    # -- heaps leaving -----------------------------------------------------------------

    def _complete(self, live: dict[int, _ChunkHeap], heap: _ChunkHeap) -> None:
        del live[heap.cnt]
        if not live:
            del self._live[heap.cnt % self._substreams]
        stats = self._stats
        stats[HEAPS] += 1
        slot = heap.slot
        if slot is not None:
            if not slot.live:
                # Its chunk left the window before the heap completed.
                stats[self._too_old_index] += 1
            elif not self._pp:
                slot.present[heap.index] = 1

    def _evict(self, live: dict[int, _ChunkHeap]) -> None:
        """Make room in a full substream by dropping its oldest-created heap (left incomplete)."""
        live.pop(next(iter(live)))
        stats = self._stats
        stats[INCOMPLETE_HEAPS_EVICTED] += 1
        stats[HEAPS] += 1

    def _flush_heaps(self) -> None:
        stats = self._stats
        for live in self._live.values():
            n = len(live)
            stats[INCOMPLETE_HEAPS_FLUSHED] += n
            stats[HEAPS] += n
        self._live = {}

    def _stop_item(self) -> None:
        """A stop item arrived: its heap is already gone; the rest are flushed."""
        self._flush_heaps()
        self.stop()

    # -- stream events -------------------------------------------------------------------

    def end_batch(self, n_packets: int) -> None:
        """A reader finished a batch of ``n_packets`` packets; merge the callback's statistics."""
        stats = self._stats
        stats[BATCHES] += 1
        if n_packets > stats[MAX_BATCH]:
            stats[MAX_BATCH] = n_packets
        self.merge_place_stats()

    def merge_place_stats(self) -> None:
        """Fold the statistics the place callback changed into the stream's."""
        changes = self._place.take_stats()
        if changes is None:
            return
        stats = self._stats
        modes = self._stat_modes
        maximum = StreamStatConfig.Mode.MAXIMUM
        for index, value in enumerate(changes[: len(stats)]):
            if value:
                if index < len(modes) and modes[index] is maximum:
                    if value > stats[index]:
                        stats[index] = value
                else:
                    stats[index] = (stats[index] + value) % _UINT64_LIMIT

    def stop(self) -> None:
        """The stream is ending: count partial heaps as flushed and give back every chunk.

        Held and queued packets are discarded (the stream drains them first
        when the end comes from the data). Chunks are released in ascending
        order. Further packets are ignored. Idempotent.
        """
        if self._stopped:
            return
        self._stopped = True
        self._held = None
        self._queue.clear()
        self._flush_heaps()
        self.merge_place_stats()
        self._release_below(RELEASE_ALL)
        self._source.release(RELEASE_ALL)
