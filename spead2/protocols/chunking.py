"""Chunk placement: packets in, heap payloads written straight into pre-allocated chunks.

Implements the packet side of chunk streams, sans-IO. Packets are
grouped into live heaps exactly as :mod:`.assembler` does (substreams,
``max_heaps`` eviction, in-order or out-of-order, stop items), but a heap's
payload is never assembled on its own: on the heap's first packet the *place
function* says which chunk it belongs to and where, and every packet's
payload is copied once, directly into that chunk's ``data``. The live-heap
state machine itself is :mod:`.live_heaps`, shared with :mod:`.assembler`.

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
checked (the reference trusts them, and corrupts memory on a bad offset): a
heap that would land outside the chunk's ``data``,
``present`` or ``extra`` is dropped and counted in ``rejected_heaps``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Buffer
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from .batch import MIN_VECTOR_BATCH, PacketBatch, SingleHeaps, immediate_values
from .chunk_batch import batch_rest, joined_batch, place_rows_into, placement_of, placement_rows
from .constants import HEAP_CNT_ID, HEAP_LENGTH_ID, PAYLOAD_LENGTH_ID, PAYLOAD_OFFSET_ID
from .live_heaps import IMMEDIATE, LiveHeap, LiveHeapConfig, LiveHeapMachine, addresses_fit
from .packet import decode_packet
from .report import Report, ignore
from .stats import EXTRA_STATS, HEAPS, PACKETS, SINGLE_PACKET_HEAPS, StreamStatConfig

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


def chunk_stream_stat_configs(config: LiveHeapConfig) -> list[StreamStatConfig]:
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

    # Optional: ``prepare(rows)``, given the item values of every heap a batch
    # may begin, places them all in one call; ``__call__`` then looks them up
    # (a vectorised place, ``recv.BatchPlace``).


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

    def __init__(self, chunk_id: int, chunk: Any, report: Report) -> None:
        self.chunk_id = chunk_id
        self.chunk = chunk
        self.live = True
        self.data = _byte_view(chunk, "data", report)
        self.present = _byte_view(chunk, "present", report)
        self.data_size = len(self.data)
        self.present_size = len(self.present)
        extra = getattr(chunk, "extra", None)
        self.extra = _byte_view(chunk, "extra", report) if extra is not None else None


_EMPTY = memoryview(bytearray())


def _byte_view(chunk: Any, name: str, report: Report) -> memoryview:
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
        report(
            _WARNING, f"chunk-{name}",
            "chunk %s buffer is not a writable contiguous buffer (%s): heaps placed in it "
            "are dropped", name, exc,
        )
        return _EMPTY


class _ChunkHeap(LiveHeap):
    """A heap still receiving packets, written into a chunk.

    ``slot`` is the chunk it is written into (``None`` for a heap that was
    rejected or too old at placement: its packets are only accounted);
    ``base`` its byte offset in the chunk's ``data``, ``index`` its first
    entry of ``present``.
    """

    __slots__ = ("slot", "base", "index")

    def __init__(
        self, cnt: int, hab: int, length: int, in_order: bool, slot: _Slot | None, base: int, index: int,
    ) -> None:
        super().__init__(cnt, hab, length, in_order)
        self.slot = slot
        self.base = base
        self.index = index


class ChunkPlacer(LiveHeapMachine[_ChunkHeap]):
    """Places the packets of one stream into chunks (see the module docstring).

    ``config`` is the stream's ``recv.StreamConfig`` (copied), ``chunk_config``
    its ``recv.ChunkStreamConfig``; ``place`` is the adapted place callback;
    ``source`` supplies and takes back chunks; ``stats`` is the statistics
    list laid out as :func:`chunk_stream_stat_configs` describes, updated in
    place; ``report`` receives every rejection with its reason (see :mod:`.report`).
    """

    def __init__(
        self,
        config: LiveHeapConfig,
        chunk_config: ChunkConfigLike,
        place: PlaceFunction,
        source: ChunkSource,
        stats: list[int],
        report: Report = ignore,
    ) -> None:
        stat_modes = [stat.mode for stat in chunk_stream_stat_configs(config)]
        if len(stats) < len(stat_modes):
            raise ValueError(f"stats has {len(stats)} entries; the stream needs {len(stat_modes)}")
        super().__init__(config, stats, report)
        self._stat_modes = stat_modes
        n_custom = len(config.stats)
        self._too_old_index = n_custom
        self._rejected_index = n_custom + 1
        self._invalid_index = n_custom + 2
        self._place = place
        self._source = source
        self._max_chunks = chunk_config.max_chunks
        self._max_extra = chunk_config.max_heap_extra
        self._pp = chunk_config.packet_presence_payload_size
        items = list(chunk_config.items)
        self._item_ids = items
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
        #: The window: chunk ID -> slot, in ascending ID order.
        self._slots: dict[int, _Slot] = {}
        self._head = -1
        self._tail = 0
        #: While blocked: the packet waiting for a chunk and its placement.
        self._held: tuple[bytes, Placement] | None = None
        self._queue: deque[bytes | PacketBatch] = deque()
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

    # -- packets -----------------------------------------------------------------------

    def add_packet(self, data: Buffer) -> bool:
        """Process one packet; return False once the stream must stop.

        ``data`` is exactly one packet. While :attr:`blocked`, packets are
        copied and queued in arrival order. Malformed packets are dropped,
        counted in ``invalid_packets`` and reported; nothing here raises for bad input.
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
        # What queued meanwhile, in arrival order: whole batches (the rest of a
        # reader's batch, copied once) and single packets. Should the placer
        # block again, each call below queues what it is given, so the order holds.
        pending = list(self._queue)
        self._queue.clear()
        k = 0
        while k < len(pending):
            item = pending[k]
            k += 1
            if isinstance(item, PacketBatch):
                if not self.add_batch(item):
                    return False
                continue
            packets = [item]
            while k < len(pending) and not isinstance(pending[k], PacketBatch):
                packets.append(pending[k])  # type: ignore[arg-type]
                k += 1
            if len(packets) >= MIN_VECTOR_BATCH:
                # Many packets queued one by one: one batch again, for the batch path.
                if not self.add_batch(joined_batch(packets)):
                    return False
            else:
                for packet in packets:
                    if not self.add_packet(packet):
                        return False
        return True

    def _process(self, view: memoryview) -> bool:
        decoded = decode_packet(view, self._report)
        stats = self._stats
        if decoded is None:
            stats[self._invalid_index] += 1
            return True
        cnt, length, offset, plen, hab, start, pointers = decoded
        stats[PACKETS] += 1
        if length < 0:
            # Chunk streams need every heap's size up front (the reference
            # forces allow_unsized_heaps off for them).
            self._report(_INFO, "heap-no-heaplen", "packet rejected because it has no HEAP_LEN")
            return True
        heap = self._table.get(cnt)
        if heap is None:
            return self._new_heap(view, decoded, None)
        return self._join(heap, length, offset, plen, hab, start, pointers, view)

    def _write(self, heap: _ChunkHeap, offset: int, plen: int, view: memoryview, start: int) -> None:
        slot = heap.slot
        if slot is not None and slot.live:
            if plen:
                base = heap.base + offset
                slot.data[base : base + plen] = view[start:]
            if self._pp:
                slot.present[heap.index + offset // self._pp] = 1

    def _bulk_ready(self, heap: _ChunkHeap, offset: int) -> bool:
        return self._held is None  # while blocked, packets queue in arrival order

    def _bulk_write(self, heap: _ChunkHeap, offset: int, plen: int, rows: npt.NDArray[np.uint8]) -> None:
        slot = heap.slot
        if slot is None or not slot.live:
            return
        k = len(rows)
        base = heap.base + offset
        target = np.frombuffer(slot.data, dtype=np.uint8)[base : base + k * plen].reshape(rows.shape)
        target[...] = rows
        pp = self._pp
        if pp:
            present = slot.present
            index = heap.index
            for j in range(k):
                present[index + (offset + j * plen) // pp] = 1

    def _new_heap(
        self, view: memoryview, decoded: tuple[Any, ...], placement: Placement | None
    ) -> bool:
        """The first packet of a heap: place it, then write it (``placement`` set when resuming)."""
        cnt, length, offset, plen, hab, start, pointers = decoded
        stats = self._stats
        in_order = self._in_order
        if placement is None:
            if offset != 0 and in_order:
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
                self._stop()
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
                self._report(
                    _WARNING, "chunk-free-stopped",
                    "free chunk ringbuffer stopped: no chunk for heap %d; stopping the stream", cnt,
                )
                self.stop()
                return False
            if found is TOO_OLD:
                stats[self._too_old_index] += 1
            elif (
                # Fast check for the usual case; _fits does the full one (and reports).
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
        # An item address beyond the heap: it can never complete.
        bad = bool(pointers) and not addresses_fit(pointers, hab, length)
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
        heap = _ChunkHeap(cnt, hab, length, in_order, slot, heap_offset, heap_index)
        self._table.insert(heap)  # an evicted heap is simply left incomplete in its chunk
        heap.bad = bad
        if pointers:
            heap.pointers += pointers
        if plen:
            if heap.ranges is not None:
                heap.ranges.add(offset, plen)
            heap.received = plen
        return True

    def _prepare_batch(self, batch: PacketBatch) -> None:
        """With a place callback that can place many heaps at once (it has a
        ``prepare`` method), the heaps the batch may begin are placed in one
        call first: the packets whose cnt first appears in the batch and is
        not live yet.
        """
        prepare = getattr(self._place, "prepare", None)
        if prepare is not None and self._held is None and not self._stopped:
            # A guess at the new heaps' item values, parsed with numpy: the
            # callback's answers are looked up by the values the packet path
            # computes, so a wrong guess costs only a call for that heap.
            found = immediate_values(batch, self._item_ids)
            if found is not None:
                cnts, values = found
                unique, first = np.unique(cnts, return_index=True)
                table = self._table
                new = [i for c, i in zip(unique.tolist(), first.tolist(), strict=True) if table.get(c) is None]
                prepare(values[np.sort(np.array(new, dtype=np.intp))].tolist())

    def _add_single_heaps(self, batch: PacketBatch, single: SingleHeaps) -> bool:
        """A batch of mostly single-packet heaps, placed and copied with the least work.

        Packets that are not fast (see :func:`.batch.single_packet_heaps`),
        or whose heap is live, take :meth:`add_packet` in order. Each run of
        the others is placed heap by heap in arrival order, as by the packet
        path: by a vectorised place (one call for all of the batch's), by a C
        callback called from compiled code (``place_run``: see
        ``recv/chunk/_place_driver.py``) or once per heap. With placements as
        arrays, the heaps up to the next one that moves the window or has
        extra bytes are written at once (:func:`.chunk_batch.place_rows`: a
        strided copy per chunk, ``present`` and the statistics as array
        operations); anything irregular there, and that next heap, take the
        packet path's placement code. Once the placer blocks, the rest of the
        batch is queued as one copy.
        """
        if self._stopped:
            return False
        n = len(batch)
        if self._held is not None:
            self._queue.append(batch_rest(batch, 0))
            return True
        place = self._place
        fast = single.fast
        cnts = single.cnt
        table = self._table
        items = single.items(self._item_ids)
        # Placement rows (see chunk_batch.placement_rows) when placements come as arrays.
        out: npt.NDArray[np.uint64] | None = None
        place_rows = getattr(place, "place_rows", None)
        place_run = getattr(place, "place_run", None)
        call_at = getattr(place, "call_at", None)
        view = batch.view
        header_size = single.header_size
        # The C callback gets each packet where it lies in the batch's buffer;
        # ``holder`` keeps the buffer exported meanwhile.
        holder = np.frombuffer(view, dtype=np.uint8) if call_at is not None else None
        base = holder.ctypes.data if holder is not None else 0
        packets = sizes = None
        if place_rows is not None:
            out = placement_rows(single)
            mask = single.fast_mask
            out[mask, :5] = place_rows(items[mask])
        elif place_run is not None:
            out = placement_rows(single)
            packets = (single.start_array - header_size + base).astype(np.uint64)
            sizes = (single.length_array + header_size).astype(np.uint64)
        rows = items.tolist() if out is None else None
        payload_start = single.payload_start
        payload_end = single.payload_end
        # Where each run of fast packets ends: the next packet that is not fast.
        run_ends = np.flatnonzero(~single.fast_mask).tolist() + [n]
        next_end = 0
        i = 0
        try:
            while i < n:
                if self._held is not None:
                    self._queue.append(batch_rest(batch, i))
                    return True
                if not fast[i] or (len(table) and table.get(cnts[i]) is not None):
                    if not self.add_packet(batch[i]):
                        return False
                    i += 1
                    continue
                # The run of fast packets from i whose heaps are not live (the
                # table does not change while they are placed).
                while run_ends[next_end] <= i:
                    next_end += 1
                j = run_ends[next_end]
                if len(table):
                    j = next((k for k in range(i + 1, j) if table.get(cnts[k]) is not None), j)
                if out is None:
                    assert rows is not None
                    while i < j and self._held is None:
                        start = payload_start[i]
                        end = payload_end[i]
                        if call_at is not None:
                            placement = call_at(base + start - header_size, end - start + header_size, rows[i])
                        else:
                            placement = place(view[start - header_size : end], rows[i])
                        if not self._place_single(view, single, i, placement):
                            return False
                        i += 1
                    continue
                while i < j and self._held is None:
                    head = self._head
                    if place_run is not None:
                        stop = place_run(items, packets, sizes, i, j, head, out)
                    else:
                        beyond = np.flatnonzero(out[i:j, 0].view(np.int64) > head)
                        stop = i + int(beyond[0]) + 1 if len(beyond) else j
                    last = placement_of(out, stop - 1)
                    special = last[0] > head or last[4] != 0
                    plain_end = stop - 1 if special else stop
                    if plain_end > i and not place_rows_into(self, view, single, out, i, plain_end):
                        for k in range(i, plain_end):  # irregular: the packet path's code, in order
                            if not self._place_single(view, single, k, placement_of(out, k)):
                                return False
                    if special and not self._place_single(view, single, stop - 1, last):
                        return False
                    i = stop
            return True
        finally:
            del holder

    def _place_single(self, view: memoryview, single: SingleHeaps, i: int, placement: Placement) -> bool:
        """Write fast packet ``i`` of a batch, a heap of its own, as ``placement`` says.

        The usual case (its chunk in the window, no extra bytes, no packet
        presence, within bounds) here; anything else through :meth:`_new_heap`.
        """
        chunk_id, heap_index, heap_offset, _, extra_size = placement
        length = single.length[i]
        start = single.payload_start[i]
        end = single.payload_end[i]
        stats = self._stats
        if not self._pp and not extra_size and self._tail <= chunk_id <= self._head:
            slot = self._slots.get(chunk_id)
            if slot is not None and heap_index < slot.present_size and heap_offset + length <= slot.data_size:
                if length:
                    slot.data[heap_offset : heap_offset + length] = view[start:end]
                slot.present[heap_index] = 1
                stats[PACKETS] += 1
                stats[SINGLE_PACKET_HEAPS] += 1
                stats[HEAPS] += 1
                return True
        # A new chunk, a rejection, bounds, extra bytes: the packet path's code.
        stats[PACKETS] += 1
        header_size = single.header_size
        decoded = (single.cnt[i], length, 0, length, single.hab, header_size, tuple(single.rest[i].tolist()))
        return self._new_heap(view[start - header_size : end], decoded, placement)

    def _call_place(
        self, view: memoryview, cnt: int, length: int, offset: int, plen: int, hab: int,
        pointers: tuple[int, ...],
    ) -> Placement:
        return self._place(view, self._items_of(cnt, length, offset, plen, hab, pointers))

    def _items_of(
        self, cnt: int, length: int, offset: int, plen: int, hab: int, pointers: tuple[int, ...]
    ) -> list[int]:
        """The values of ``ChunkStreamConfig.items`` in a heap's first packet (-1: absent)."""
        items = self._item_template[:]
        if items:
            for pos, field in self._special:
                items[pos] = (cnt, length, offset, plen)[field]
            wanted = self._wanted
            if wanted and pointers:
                id_mask = (1 << (63 - hab)) - 1
                mask = (1 << hab) - 1
                for word in pointers:
                    if word >= IMMEDIATE:
                        positions = wanted.get((word >> hab) & id_mask)
                        if positions is not None:
                            value = word & mask
                            for pos in positions:
                                items[pos] = value  # the last occurrence wins
        return items

    def _fits(
        self, slot: _Slot, cnt: int, length: int, heap_index: int, heap_offset: int,
        extra_offset: int, extra_size: int,
    ) -> bool:
        """Bounds-check a placement against the chunk (the reference does not)."""
        data_size = len(slot.data)
        if heap_offset + length > data_size:
            self._report(
                _WARNING, "chunk-bounds-data",
                "place callback put heap %d at bytes [%d, %d) of chunk %d, whose data has %d "
                "bytes: heap dropped (counted in rejected_heaps)",
                cnt, heap_offset, heap_offset + length, slot.chunk_id, data_size,
            )
            return False
        last = heap_index + (max(length, 1) - 1) // self._pp if self._pp else heap_index
        if last >= len(slot.present):
            self._report(
                _WARNING, "chunk-bounds-present",
                "place callback gave heap %d heap_index %d, but chunk %d's present has %d "
                "entries (%d needed): heap dropped (counted in rejected_heaps)",
                cnt, heap_index, slot.chunk_id, len(slot.present), last + 1,
            )
            return False
        if extra_size:
            extra = slot.extra
            if extra_size > self._max_extra or extra is None or extra_offset + extra_size > len(extra):
                self._report(
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
                self._slots[next_id] = _Slot(next_id, chunk, self._report)
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

    def _complete(self, heap: _ChunkHeap) -> None:
        stats = self._stats
        stats[HEAPS] += 1
        slot = heap.slot
        if slot is not None:
            if not slot.live:
                # Its chunk left the window before the heap completed.
                stats[self._too_old_index] += 1
            elif not self._pp:
                slot.present[heap.index] = 1

    def _stop(self) -> None:
        """A stop item arrived: its heap is already gone; the rest are flushed."""
        self.stop()

    # -- stream events -------------------------------------------------------------------

    def merge_place_stats(self) -> None:
        """Fold the statistics the place callback changed into the stream's (after each batch)."""
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
        for _ in self._table.flush():
            pass
        self.merge_place_stats()
        self._release_below(RELEASE_ALL)
        self._source.release(RELEASE_ALL)
