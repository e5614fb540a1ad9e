"""The chunk placer's batch helpers: heaps written into chunks as array operations, batches queued whole.

:class:`~.chunking.ChunkPlacer` takes a batch of single-packet heaps (see
:func:`.batch.single_packet_heaps`) with their placements as an array, one
row per packet: ``chunk_id`` (its bits, as ``uint64``), ``heap_index``,
``heap_offset``, ``extra_offset``, ``extra_size``. :func:`place_rows_into`
writes a stretch of such heaps whose chunks are all in the window at once:
per chunk one strided copy of the payloads (or one per heap when they are
not evenly spaced), ``present`` and the statistics by array operations. It
does so only where the result is exactly the packet path's (no packet
presence, no extra bytes, every placement within bounds: heaps of one
chunk are copied in arrival order, so overlapping ones end as the packet
path leaves them); otherwise it leaves the stretch to the
caller's per-heap code and changes nothing.

:func:`batch_rest` keeps the rest of a batch when the placer blocks
(copied in one piece when the reader reuses its buffer), and :func:`joined_batch` makes
packets queued one by one a batch again.
"""

from __future__ import annotations

from collections.abc import Buffer, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .batch import PacketBatch, SingleHeaps
from .stats import HEAPS, PACKETS, SINGLE_PACKET_HEAPS

if TYPE_CHECKING:
    from .chunking import ChunkPlacer, Placement

__all__ = ["batch_rest", "joined_batch", "placement_of", "place_rows_into"]

_SIGN = 1 << 63
_WRAP = 1 << 64
_ONES = b"\1" * 256


def batch_rest(batch: PacketBatch, first: int) -> PacketBatch:
    """Packets ``first`` onwards of ``batch``, to keep: copied into a buffer of their own
    (one copy), unless the batch's buffer is stable."""
    starts = np.asarray(batch.starts, dtype=np.intp)[first:]
    sizes = np.asarray(batch.sizes, dtype=np.intp)[first:]
    if batch.stable:
        return PacketBatch(batch.view, starts, sizes, stable=True)
    if not len(starts):
        return PacketBatch(memoryview(b""), starts, sizes)
    low = int(starts[0])
    high = int((starts + sizes).max())
    return PacketBatch(memoryview(bytes(batch.view[low:high])), starts - low, sizes)


def joined_batch(packets: Sequence[Buffer]) -> PacketBatch:
    """``packets`` (each a whole packet) back to back in one buffer, as a batch."""
    sizes = np.array([len(memoryview(packet)) for packet in packets], dtype=np.intp)
    starts = np.zeros(len(sizes), dtype=np.intp)
    np.cumsum(sizes[:-1], out=starts[1:])
    return PacketBatch(memoryview(b"".join(packets)), starts, sizes)


def placement_rows(single: SingleHeaps) -> npt.NDArray[np.uint64]:
    """An array of placement rows for the packets of ``single``, to fill.

    Per packet: ``chunk_id`` (its bits), ``heap_index``, ``heap_offset``,
    ``extra_offset``, ``extra_size`` (zero until placed), then the packet's
    payload start in the batch's buffer and its length (a heap's length).
    """
    rows = np.zeros((len(single.fast), 7), dtype=np.uint64)
    rows[:, 5] = single.start_array
    rows[:, 6] = single.length_array
    return rows


def placement_of(rows: npt.NDArray[np.uint64], i: int) -> Placement:
    """Row ``i`` of a placement array as the tuple a place function returns."""
    chunk_id, heap_index, heap_offset, extra_offset, extra_size = rows[i, :5].tolist()
    if chunk_id >= _SIGN:
        chunk_id -= _WRAP
    return chunk_id, heap_index, heap_offset, extra_offset, extra_size


def place_rows_into(
    placer: ChunkPlacer, view: memoryview, single: SingleHeaps, rows: npt.NDArray[np.uint64],
    first: int, end: int,
) -> bool:
    """Write fast packets ``first .. end - 1`` of a batch, each a heap, as ``rows`` places them.

    Every placement's ``chunk_id`` is at most the window's head (the window
    does not move). False, with nothing changed, when the stretch is not
    plain (packet presence, extra bytes, a placement out of bounds): the caller then places them one by one.
    """
    if placer._pp:
        return False
    part = rows[first:end]
    if _place_regular(placer, view, part):
        return True
    if part[:, 4].any():  # the callers end a stretch at a heap with extra bytes; checked all the same
        return False
    chunk_id = part[:, 0].view(np.int64)
    count = end - first
    starts = single.start_array[first:end]
    lengths = single.length_array[first:end]
    low = int(chunk_id.min())
    writes: list[tuple[Any, npt.NDArray[np.intp] | None]] = []
    if low == int(chunk_id.max()) and low >= placer._tail:
        # The usual case: every heap in one chunk of the window.
        slot = placer._slots.get(low)
        if slot is None:
            too_old = count
        elif _fits(slot, part, lengths):
            writes.append((slot, None))
            too_old = 0
        else:
            return False
        rejected = 0
    else:
        rejected = int(np.count_nonzero(chunk_id < 0))
        in_window = chunk_id >= placer._tail  # the tail is never negative
        too_old = count - rejected - int(np.count_nonzero(in_window))
        for cid in np.unique(chunk_id[in_window]).tolist():
            selected = np.flatnonzero(chunk_id == cid)
            slot = placer._slots.get(cid)
            if slot is None:
                too_old += len(selected)  # the source had no chunk for that ID
            elif _fits(slot, part[selected], lengths[selected]):
                writes.append((slot, selected))
            else:
                return False
    for slot, where in writes:
        if where is None:
            _copy_payloads(view, starts, lengths, slot.data, part[:, 2])
            np.frombuffer(slot.present, dtype=np.uint8)[part[:, 1]] = 1
        else:
            _copy_payloads(view, starts[where], lengths[where], slot.data, part[where, 2])
            np.frombuffer(slot.present, dtype=np.uint8)[part[where, 1]] = 1
    stats = placer._stats
    stats[PACKETS] += count
    stats[SINGLE_PACKET_HEAPS] += count
    stats[HEAPS] += count
    if rejected:
        stats[placer._rejected_index] += rejected
    if too_old:
        stats[placer._too_old_index] += too_old
    return True


def _place_regular(placer: ChunkPlacer, view: memoryview, part: npt.NDArray[np.uint64]) -> bool:
    """The usual stretch, checked and written with the fewest numpy calls; False if it is not one.

    Usual: heaps of one length ``L``, consecutive in one chunk of the window
    (``heap_index`` up by one, ``heap_offset`` up by ``L``), no extra bytes,
    payloads evenly spaced in the buffer, all within the chunk's bounds.
    """
    count = len(part)
    chunk_id, index, offset, _, extra_size, start, length = part[0].tolist()
    if extra_size or chunk_id < placer._tail or chunk_id > placer._head:  # also catches negative IDs' bits
        return False
    slot = placer._slots.get(chunk_id)
    if slot is None:
        return False
    step = 0
    if count > 1:
        step = int(part[1, 5]) - start
        if step <= 0:
            return False
        expected = np.array([0, 1, length, 0, 0, step, 0], dtype=np.uint64)
        if not (np.diff(part, axis=0) == expected).all():
            return False
    last_index = index + count - 1
    end = offset + count * length
    if last_index >= slot.present_size or end > slot.data_size:
        return False
    if length:
        source = np.ndarray((count, length), dtype=np.uint8, buffer=view, offset=start, strides=(step, 1))
        np.ndarray((count, length), dtype=np.uint8, buffer=slot.data, offset=offset)[...] = source
    slot.present[index : last_index + 1] = _ONES[:count] if count <= len(_ONES) else b"\1" * count
    stats = placer._stats
    stats[PACKETS] += count
    stats[SINGLE_PACKET_HEAPS] += count
    stats[HEAPS] += count
    return True


def _fits(slot: Any, part: npt.NDArray[np.uint64], lengths: npt.NDArray[np.int64]) -> bool:
    """Whether heaps of ``lengths`` bytes placed by rows ``part`` all lie within ``slot``."""
    if int(part[:, 1].max()) >= slot.present_size:
        return False
    offsets = part[:, 2]
    size = int(lengths[0])
    if len(part) > 1 and size and (lengths == size).all():
        # Equal heaps at evenly spaced offsets, at least a heap apart (the usual case).
        first = int(offsets[0])
        step = int(offsets[1]) - first
        if step >= size and first + (len(part) - 1) * step + size <= slot.data_size:
            if (np.diff(offsets.view(np.int64)) == step).all():
                return True
    # Exact (offsets may be near 2**64). Overlapping heaps need no care: each chunk's
    # heaps are copied in arrival order, as the packet path does.
    ends = offsets.astype(object) + lengths.astype(object)
    return bool(max(ends.tolist()) <= slot.data_size)


def _copy_payloads(
    view: memoryview, starts: npt.NDArray[np.intp], lengths: npt.NDArray[np.int64], data: memoryview,
    offsets: npt.NDArray[np.uint64],
) -> None:
    """Copy payloads ``view[starts[k] : starts[k] + lengths[k]]`` to ``data[offsets[k]:]`` (in bounds, disjoint)."""
    k = len(starts)
    size = int(lengths[0])
    if k > 1 and size and (lengths == size).all():
        source_step = int(starts[1]) - int(starts[0])
        target = offsets.astype(np.int64)
        target_step = int(target[1]) - int(target[0])
        if (
            target_step >= size
            and source_step > 0
            and (np.diff(starts) == source_step).all()
            and (np.diff(target) == target_step).all()
        ):
            # Evenly spaced on both sides: one strided copy.
            source = np.ndarray(
                (k, size), dtype=np.uint8, buffer=view, offset=int(starts[0]), strides=(source_step, 1)
            )
            np.ndarray(
                (k, size), dtype=np.uint8, buffer=data, offset=int(target[0]), strides=(target_step, 1)
            )[...] = source
            return
    for start, length, offset in zip(starts.tolist(), lengths.tolist(), offsets.tolist(), strict=True):
        if length:
            data[offset : offset + length] = view[start : start + length]
