"""Payloads received straight into place: where the next packets of a heap should land.

A reader that can scatter each datagram over two areas (``recvmmsg`` with
two iovecs per slot) asks the core for a :class:`Placement`: the live heap
that the last packets continued, and where its next ``count`` payloads go if
they keep coming in order (``plen`` bytes each, the last one possibly
shorter). It points each slot's header area at the slot and its payload
area at that place in the heap's buffer. Afterwards :func:`confirmed_count`
tells how many leading datagrams are exactly the predicted packets (same
header layout and fields, same size): their payloads are already in place
and the core only accounts for them (``LiveHeapMachine.add_placed_batch``).
Every other datagram of the batch is made whole again in its slot and takes
the usual path.

Why a wrong guess cannot corrupt a heap: the predicted places lie beyond the
bytes the heap has received (the heap must be contiguous, ``[0, received)``),
so whatever lands there overwrites nothing received; the reader moves every
unconfirmed payload back into its slot before any packet of the batch is
processed; and only a *leading* run of confirmed packets is trusted, so no
other packet can have touched the heap before they are accounted for. Bytes
left in the unreceived part of a heap's buffer are never delivered: a heap is
delivered only once every byte has been written (see :mod:`.assembler`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .batch import HEADER_SIZE, PacketBatch, Positions, regular_header_word
from .constants import IMMEDIATE

__all__ = ["PacketPlan", "Placement", "PlacedBatch", "confirmed_count", "predicted_count", "MAX_PLANNED"]

#: Most packets a :class:`PacketPlan` covers.
MAX_PLANNED = 4096
_HEADER_RANGE = np.arange(HEADER_SIZE, dtype=np.intp)
_HEADER_WORDS = HEADER_SIZE // 8
_WORD_RANGE = np.arange(_HEADER_WORDS, dtype=np.intp)


class PacketPlan:
    """Every packet continuing a heap in order from ``base``: its offset, payload length and header.

    At most :data:`MAX_PLANNED` packets (a hostile HEAP_LENGTH cannot make
    it large). Built once per heap and payload length, then sliced by each
    :class:`Placement`: a reader asks for one before every receive call.
    The plan of the heap before, ``like``, if it has the same shape (address
    width, HEAP_LENGTH, base and payload length: the next heap of a sender's
    series), lends its arrays: only the HEAP_CNT words are new.
    """

    __slots__ = ("cnt", "hab", "length", "base", "plen", "offsets", "lengths", "sizes", "headers")

    def __init__(
        self, cnt: int, hab: int, length: int, base: int, plen: int, like: PacketPlan | None = None
    ) -> None:
        self.cnt = cnt
        self.hab = hab
        self.length = length
        self.base = base
        self.plen = plen
        if like is not None and (like.hab, like.length, like.base, like.plen) == (hab, length, base, plen):
            self.offsets: npt.NDArray[np.int64] = like.offsets
            self.lengths: npt.NDArray[np.int64] = like.lengths
            self.sizes: npt.NDArray[np.int64] = like.sizes
            headers = like.headers.copy()
            headers.view(">u8")[:, 1] = IMMEDIATE | (1 << hab) | cnt
            self.headers: npt.NDArray[np.uint8] = headers
            return
        count = min(-(-(length - base) // plen), MAX_PLANNED)
        offsets = base + np.arange(count, dtype=np.int64) * plen
        self.offsets = offsets
        self.lengths = np.minimum(plen, length - offsets)
        #: Each packet's size: header and payload.
        self.sizes = self.lengths + HEADER_SIZE
        address_width = hab // 8
        words = np.empty((count, 5), dtype=">u8")
        words[:, 0] = regular_header_word(address_width)
        words[:, 1] = IMMEDIATE | (1 << hab) | cnt
        words[:, 2] = IMMEDIATE | (2 << hab) | length
        words[:, 3] = offsets.astype(np.uint64) + np.uint64(IMMEDIATE | (3 << hab))
        words[:, 4] = self.lengths.astype(np.uint64) + np.uint64(IMMEDIATE | (4 << hab))
        #: Each packet's 40 header bytes, exactly (see :func:`confirmed_count`).
        self.headers = words.view(np.uint8).reshape(count, HEADER_SIZE)

    def row(self, cnt: int, hab: int, length: int, offset: int, plen: int) -> int:
        """The row of the packet at ``offset`` if this plan is of that heap and payload length, else -1."""
        if (cnt, hab, length, plen) != (self.cnt, self.hab, self.length, self.plen):
            return -1
        row, rest = divmod(offset - self.base, plen)
        return row if rest == 0 and 0 <= row < len(self.offsets) else -1


class Placement:
    """The next ``count`` packets predicted to continue live heap ``heap`` in order.

    Packet ``i`` would carry the ``lengths[i]`` payload bytes at ``offsets[i]``
    of ``buffer`` (the heap's payload, ``length`` bytes); its header would be
    exactly ``headers[i]``: the four per-packet item pointers of address
    width ``hab`` bits. ``heap`` is the core's own record, opaque to readers;
    ``plan`` the :class:`PacketPlan` sliced (pass it to the next placement
    of the heap to reuse it).
    """

    __slots__ = (
        "heap", "buffer", "cnt", "hab", "length", "offset", "plen", "count", "offsets", "lengths",
        "sizes", "headers", "plan",
    )

    def __init__(
        self, heap: object, buffer: bytearray, cnt: int, hab: int, length: int, offset: int, plen: int,
        limit: int, plan: PacketPlan | None = None,
    ) -> None:
        if plen <= 0 or not 0 <= offset < length or len(buffer) != length:
            raise ValueError(f"no packet to place: offset {offset}, plen {plen}, length {length}")
        self.heap = heap
        self.buffer = buffer
        self.cnt = cnt
        self.hab = hab
        self.length = length
        self.offset = offset
        self.plen = plen
        row = -1 if plan is None else plan.row(cnt, hab, length, offset, plen)
        if row < 0 or row + min(limit, -(-(length - offset) // plen)) > len(plan.offsets):  # type: ignore[union-attr]
            # From the first place of the heap's grid of ``plen`` payloads (so the
            # next heap of a series, continued from another offset, has the same
            # plan shape), unless that makes the plan too long.
            base = offset % plen
            if -(-(length - base) // plen) > MAX_PLANNED:
                base = offset
            plan = PacketPlan(cnt, hab, length, base, plen, plan)
            row = (offset - base) // plen
        assert plan is not None
        self.plan = plan
        end = min(row + limit, len(plan.offsets))
        self.count = end - row
        self.offsets: npt.NDArray[np.int64] = plan.offsets[row:end]
        self.lengths: npt.NDArray[np.int64] = plan.lengths[row:end]
        self.sizes: npt.NDArray[np.int64] = plan.sizes[row:end]
        self.headers: npt.NDArray[np.uint8] = plan.headers[row:end]


def confirmed_count(
    view: memoryview, stride: int, sizes: Sequence[int] | npt.NDArray[np.integer], placement: Placement
) -> int:
    """How many leading datagrams are exactly the packets ``placement`` predicted.

    Datagram ``i`` starts at ``view[i * stride]`` and is ``sizes[i]`` bytes
    long (the first ``len(sizes)`` slots, at most ``placement.count``); only
    its first :data:`~.batch.HEADER_SIZE` bytes (the header area) are read.
    It is confirmed when those bytes are exactly the header of the predicted
    packet (magic, version, the heap's flavour, no reserved bits, four item
    pointers: immediate HEAP_CNT, HEAP_LENGTH, PAYLOAD_OFFSET and
    PAYLOAD_LENGTH in that order, with the predicted values) and its size is
    the header plus the predicted payload length: then it is, byte for
    byte, the packet the plain path would accept as the next one of the heap.
    """
    k = min(len(sizes), placement.count)
    if k == 0:
        return 0
    if (k - 1) * stride + HEADER_SIZE > len(view):
        raise ValueError("the slots do not fit the view")
    if stride % 8 == 0:
        # Whole 64-bit words: five per header, fewer elements to compare.
        headers = np.ndarray((k, _HEADER_WORDS), dtype=np.uint64, buffer=view, strides=(stride, 8))
    else:
        headers = np.ndarray((k, HEADER_SIZE), dtype=np.uint8, buffer=view, strides=(stride, 1))
    return _leading(headers, np.asarray(sizes[:k]), placement, k)


def predicted_count(
    view: memoryview, starts: npt.NDArray[np.intp], sizes: npt.NDArray[np.intp], placement: Placement
) -> int:
    """:func:`confirmed_count` for packets ``view[starts[i] : starts[i] + sizes[i]]`` of a batch.

    How many of the leading packets are exactly the packets ``placement``
    predicted (its payloads were not received in place: the caller copies
    them); the starts need not be evenly spaced.
    """
    k = min(len(starts), placement.count)
    if k == 0:
        return 0
    starts = starts[:k]
    sizes = sizes[:k]
    if int(sizes.min()) < HEADER_SIZE or int(starts.max()) + HEADER_SIZE > len(view):
        return 0  # a packet shorter than a header is never predicted (and stays in bounds)
    if not (starts & 7).any():
        words = np.frombuffer(view, dtype=np.uint64, count=len(view) // 8)
        headers = words[(starts >> 3)[:, None] + _WORD_RANGE]
    else:
        headers = np.frombuffer(view, dtype=np.uint8)[starts[:, None] + _HEADER_RANGE]
    return _leading(headers, sizes, placement, k)


def _leading(
    headers: npt.NDArray[np.uint8] | npt.NDArray[np.uint64], sizes: npt.NDArray[np.integer],
    placement: Placement, k: int,
) -> int:
    """How many leading rows of ``headers`` (bytes or words) and ``sizes`` are the first ``k`` predicted packets'."""
    expected = placement.headers[:k]
    if headers.dtype == np.uint64:
        expected = expected.view(np.uint64)
    sizes_expected = placement.sizes[:k]
    if np.array_equal(headers, expected) and np.array_equal(sizes, sizes_expected):
        return k  # the usual case, in two calls
    good = (headers == expected).all(axis=1)
    good &= sizes == sizes_expected
    return k if good.all() else int(good.argmin())


class PlacedBatch(PacketBatch):
    """A batch whose first ``placed`` packets, not listed, were received in place.

    Those packets are the first ``placed`` of ``placement`` (confirmed by
    :func:`confirmed_count`); the listed packets follow them in arrival order.
    """

    __slots__ = ("placement", "placed")

    def __init__(
        self, view: memoryview, starts: Positions, sizes: Positions, placement: Placement, placed: int
    ) -> None:
        super().__init__(view, starts, sizes)
        if not 0 <= placed <= placement.count:
            raise ValueError(f"placed {placed} of {placement.count} predicted packets")
        self.placement = placement
        self.placed = placed
