"""A batch of packets in one buffer, and the vectorised look at their headers.

Readers hold packets in batches (recvmmsg slots, runs of a memory buffer, a
TCP read buffer). A :class:`PacketBatch` names them as one buffer plus each
packet's start and size, so the core can parse every header of the batch at
once with numpy (:func:`regular_runs`) and copy each run of packets that
continue one another with one strided copy. It is also a plain sequence of
per-packet views, so anything that takes packets one at a time takes it too.

Only *regular* packets are parsed here: exactly the four per-packet item
pointers (HEAP_CNT, HEAP_LENGTH, PAYLOAD_OFFSET, PAYLOAD_LENGTH, in that
order, as every spead2 sender writes all packets of a heap but the first),
all of one flavour, passing every check of :func:`.packet.decode_packet`. Everything else
(other pointers, descriptors, stop items, other orders or flavours, anything
malformed) is left to the per-packet path, which stays the definition of
correct behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from .constants import IMMEDIATE, MAGIC, VERSION
from .packet import decode_packet

__all__ = [
    "PacketBatch", "Run", "SingleHeaps", "regular_runs", "run_rows", "single_packet_heaps", "packets_like",
    "equal_packets", "framed_like", "regular_header_word", "MIN_VECTOR_BATCH", "HEADER_SIZE", "MAX_SINGLE_POINTERS", "MAX_EQUAL_BREAKS",
]

#: Size of a regular packet's header and pointers; its payload starts here.
HEADER_SIZE = 40
#: Batches smaller than this are not worth parsing with numpy.
MIN_VECTOR_BATCH = 8
#: :func:`single_packet_heaps` leaves packets with more item pointers than this to the packet path.
MAX_SINGLE_POINTERS = 64
#: :func:`equal_packets` finds no runs among packets that break them more often than this.
MAX_EQUAL_BREAKS = 16
#: The bits of a header word that :func:`.packet.decode_packet` checks (16-31 are reserved).
_HEADER_MASK = 0xFFFFFFFF0000FFFF
_ARANGE = np.arange(HEADER_SIZE, dtype=np.intp)
_WORD_RANGE = np.arange(HEADER_SIZE // 8, dtype=np.intp)
#: Per address width in bytes: ``word >> hab`` of immediate HEAP_CNT, HEAP_LENGTH,
#: PAYLOAD_OFFSET and PAYLOAD_LENGTH.
_FIELD_KEYS = [
    np.array([(IMMEDIATE >> (8 * w)) | k for k in range(1, 5)], dtype=np.uint64) if 0 < w < 8 else None
    for w in range(9)
]


#: Packet starts or sizes: a list of ints or an integer array (arrays are cheaper to parse).
Positions = Sequence[int] | npt.NDArray[np.intp]


class PacketBatch(Sequence[memoryview]):
    """Packets ``view[starts[i] : starts[i] + sizes[i]]`` of one byte buffer, in arrival order.

    The packets must not overlap and must lie in the buffer in arrival order
    (as every reader's do): the batch path relies on it to tell evenly spaced
    packets cheaply. ``stable``: the buffer stays as it is after the call
    (the memory reader's), so packets set aside for later need no copy;
    otherwise (a reader's reused receive buffer) they are copied.

    ``runs``, if given, are runs of two packets or more (:class:`Run`, by
    index in this batch) that :func:`equal_packets` found while framing
    the batch, in order: :func:`regular_runs` then takes them as they are,
    every other packet alone, instead of parsing the batch again.

    ``framed``, if given, is ``(first, rows)`` from :func:`framed_like`:
    packets ``first`` to ``first + len(rows) - 1`` lie evenly spaced and are
    framed like packet ``first``, and ``rows`` are their header words and
    item pointers, which :func:`single_packet_heaps` then reads from it.
    """

    __slots__ = ("view", "starts", "sizes", "stable", "runs", "framed")

    def __init__(
        self, view: memoryview, starts: Positions, sizes: Positions, stable: bool = False,
        runs: list[Run] | None = None, framed: tuple[int, npt.NDArray[np.uint64]] | None = None,
    ) -> None:
        if len(starts) != len(sizes):
            raise ValueError(f"{len(starts)} starts but {len(sizes)} sizes")
        self.view = view
        self.starts = starts
        self.sizes = sizes
        self.stable = stable
        self.runs = runs
        self.framed = framed

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> memoryview: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[memoryview]: ...
    def __getitem__(self, index: int | slice) -> memoryview | Sequence[memoryview]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        start = self.starts[index]
        return self.view[start : start + self.sizes[index]]

    def __iter__(self) -> Iterator[memoryview]:
        view = self.view
        starts = self.starts
        sizes = self.sizes
        if isinstance(starts, np.ndarray):
            starts = starts.tolist()  # Python ints slice faster than numpy scalars
        if isinstance(sizes, np.ndarray):
            sizes = sizes.tolist()
        for start, size in zip(starts, sizes, strict=True):
            yield view[start : start + size]


class Run:
    """Packets ``first`` to ``last`` (inclusive) of a batch, regular, continuing one another.

    One heap ``cnt`` of ``length`` bytes and address width ``hab``; packet
    ``first + k`` carries ``plen`` bytes at heap offset ``offset + k * plen``.
    A single irregular packet is a run with ``plen = -1``.
    """

    __slots__ = ("first", "last", "cnt", "length", "offset", "plen", "hab")

    def __init__(self, first: int, last: int, cnt: int, length: int, offset: int, plen: int, hab: int) -> None:
        self.first = first
        self.last = last
        self.cnt = cnt
        self.length = length
        self.offset = offset
        self.plen = plen
        self.hab = hab


def regular_header_word(address_width: int) -> int:
    """The header word of a packet with exactly the four per-packet pointers (reserved bits 0)."""
    return (MAGIC << 56) | (VERSION << 48) | ((8 - address_width) << 40) | (address_width << 32) | 4


def _words(view: memoryview, starts: npt.NDArray[np.intp]) -> npt.NDArray[np.uint64]:
    """The first five big-endian 64-bit words of each packet: ``(n, 5)``."""
    alignment = int(starts[0]) & 7
    if ((starts & 7) == alignment).all():
        # One alignment (back-to-back packets of sizes multiple of 8, or slots):
        # gather whole words, not bytes.
        words = np.frombuffer(view, dtype=">u8", count=(len(view) - alignment) // 8, offset=alignment)
        return words[((starts - alignment) >> 3)[:, None] + _WORD_RANGE]
    buffer = np.frombuffer(view, dtype=np.uint8)
    return buffer[starts[:, None] + _ARANGE].view(">u8")


def regular_runs(batch: PacketBatch) -> tuple[list[Run], npt.NDArray[np.intp]] | None:
    """The batch cut into runs (see :class:`Run`) and its starts as an array.

    ``None`` if the batch has no run worth copying whole. A run is a maximal
    sequence of consecutive regular packets of one heap and one HEAP_LENGTH whose payloads are
    contiguous and of equal length (the shorter last packet of a heap ends
    its run).
    """
    n = len(batch)
    view = batch.view
    if n < MIN_VECTOR_BATCH:
        return None
    if batch.runs:
        found = _with_single_packets(batch.runs, n)
        return None if found is None else (found, np.asarray(batch.starts, dtype=np.intp))
    # Most batches of small heaps have no run at all (each packet its own
    # heap, with more than the four per-packet pointers): a look at three
    # packets' pointer counts saves parsing the batch.
    some = batch.starts
    if not any(view[int(some[i]) + 6 : int(some[i]) + 8] == b"\0\4" for i in (1, n // 2, n - 2)):
        return None
    starts = np.asarray(batch.starts, dtype=np.intp)
    sizes = np.asarray(batch.sizes, dtype=np.intp)
    if int(sizes.min()) < HEADER_SIZE:
        return None  # tiny packets: leave the whole batch to the packet path
    words = _words(view, starts)
    header = words[:, 0]
    address_width = (int(header[0]) >> 32) & 0xFF
    if not 0 < address_width < 8:
        return None
    hab = 8 * address_width
    expected_header = regular_header_word(address_width)
    keys = _FIELD_KEYS[address_width]
    assert keys is not None
    # Each pointer is an immediate of its field: ``word >> hab`` is exactly
    # (immediate | field ID), so one shift and compare checks ID and mode.
    shift = np.uint64(hab)
    fields = words[:, 1:] >> shift
    mask = np.uint64((1 << hab) - 1)
    values = words[:, 1:] & mask
    cnt = values[:, 0]
    length = values[:, 1]
    offset = values[:, 2]
    plen = values[:, 3]
    regular = (
        ((header & np.uint64(_HEADER_MASK)) == np.uint64(expected_header))
        & (fields == keys).all(axis=1)
        & (plen + np.uint64(HEADER_SIZE) == sizes.astype(np.uint64))
        & (offset + plen <= length)
    )
    # Packet i continues packet i - 1's run.
    continues = (
        regular[1:] & regular[:-1]
        & (cnt[1:] == cnt[:-1])
        & (length[1:] == length[:-1])  # a packet of the heap with another HEAP_LENGTH is rejected
        & (plen[1:] == plen[:-1])
        & (offset[1:] == offset[:-1] + plen[:-1])
    )
    breaks = np.flatnonzero(~continues) + 1
    if len(breaks) > n // 2:
        return None  # hardly any runs: the packet path is as good
    firsts = [0, *breaks.tolist()]
    lasts = [b - 1 for b in firsts[1:]] + [n - 1]
    regular_list = regular[firsts].tolist()
    heads = values[firsts].tolist()
    runs = [
        Run(first, last, head[0], head[1], head[2], head[3] if regular_list[i] else -1, hab)
        for i, (first, last, head) in enumerate(zip(firsts, lasts, heads, strict=True))
    ]
    return runs, starts


def _with_single_packets(found: list[Run], n: int) -> list[Run] | None:
    """``found`` (runs in order) with every packet of ``n`` outside them as a run of its own."""
    runs: list[Run] = []
    following = 0  # the first packet not yet in ``runs``
    for run in found:
        runs += [Run(i, i, 0, 0, 0, -1, run.hab) for i in range(following, run.first)]
        runs.append(run)
        following = run.last + 1
    if len(runs) + n - following - 1 > n // 2:
        return None  # hardly any runs: as regular_runs
    runs += [Run(i, i, 0, 0, 0, -1, 0) for i in range(following, n)]
    return runs


def run_rows(
    view: memoryview, starts: npt.NDArray[np.intp], first: int, last: int, plen: int
) -> npt.NDArray[np.uint8] | None:
    """The payloads of packets ``first..last`` of a batch as a ``(k, plen)`` array view.

    ``None`` when the packets are not equally spaced in the buffer (the
    caller then copies them one by one).
    """
    k = last - first + 1
    start = int(starts[first])
    size = HEADER_SIZE + plen
    if k == 1:
        stride = size
    else:
        stride = int(starts[first + 1]) - start
        # Packets never overlap, so a span of exactly (k - 1) packet sizes
        # means back to back; otherwise look at every gap.
        if int(starts[last]) - start != (k - 1) * size and not (
            np.diff(starts[first : last + 1]) == stride
        ).all():
            return None
    return np.ndarray(
        (k, plen), dtype=np.uint8, buffer=view, offset=start + HEADER_SIZE, strides=(stride, 1)
    )


def same_size_packets(view: memoryview, offset: int, size: int, count: int) -> int:
    """How many of the ``count`` places ``offset + j * size`` hold a regular packet of exactly ``size`` bytes.

    Consecutive from ``j = 0``: framing a byte stream of equal packets
    without measuring them one by one. A packet counts when its header is
    SPEAD-64-* with exactly four item pointers, the fourth an immediate
    PAYLOAD_LENGTH of ``size - 40`` (what :func:`.packet.packet_size` reads
    for such a packet) and the packet ends within ``view``.
    """
    return _framed_rows(view, offset, size, count)[0]


def _framed_rows(
    view: memoryview, offset: int, size: int, count: int
) -> tuple[int, npt.NDArray[np.uint64] | None, int]:
    """:func:`same_size_packets`, with the header words of the packets it counts and their address width.

    Returns ``(k, rows, address_width)``: ``rows`` is a strided ``(k, 5)``
    big-endian view of the packets' first five words (``None`` if ``k`` is 0).
    """
    count = min(count, (len(view) - offset) // size) if size >= HEADER_SIZE else 0
    if count <= 0:
        return 0, None, 0
    address_width = (int.from_bytes(view[offset : offset + 8]) >> 32) & 0xFF
    if not 0 < address_width < 8:
        return 0, None, 0
    hab = 8 * address_width
    plen_word = (((IMMEDIATE >> hab) | 4) << hab) | (size - HEADER_SIZE)
    # The packets are evenly spaced by assumption: a strided view, no gather.
    rows = np.ndarray((count, 5), dtype=">u8", buffer=view, offset=offset, strides=(size, 8))
    good = ((rows[:, 0] & np.uint64(_HEADER_MASK)) == np.uint64(regular_header_word(address_width))) & (
        rows[:, 4] == np.uint64(plen_word)
    )
    if not good.all():
        count = int(np.flatnonzero(~good)[0])
        rows = rows[:count]
    return count, rows if count else None, address_width


def equal_packets(view: memoryview, template: int, size: int, count: int, index: int) -> tuple[int, list[Run]]:
    """:func:`same_size_packets` from ``template`` (a packet of ``size`` bytes) on, and their runs.

    Returns ``(k, runs)``: ``k`` is what :func:`same_size_packets` counts
    from the template (0 if the template is not such a packet); ``runs``
    are the runs of two packets or more among those ``k`` packets
    (:class:`Run`, the template numbered ``index``), each a run as
    :func:`regular_runs` defines one (a change of the header's reserved
    bits also ends one here). One look at each packet's header frames it
    and places it in its run: a reader of memory hands the runs over with
    the batch (:class:`PacketBatch` ``runs``), so the batch is not parsed again.
    """
    count, rows, address_width = _framed_rows(view, template, size, count)
    plen = size - HEADER_SIZE
    if rows is None or count < 2 or not plen:
        return count, []
    hab = 8 * address_width
    # Packet j continues packet j - 1 exactly when its header words are
    # j - 1's with PAYLOAD_OFFSET advanced by plen.
    continuing = rows[1:] - rows[:-1] == np.array([0, 0, 0, plen, 0], dtype=np.uint64)
    if continuing.all():
        cuts = [0, count]  # the usual case: one candidate run
    else:
        breaks = np.flatnonzero(~continuing)
        if len(breaks) > 5 * MAX_EQUAL_BREAKS:
            return count, []  # broken up (hostile?): these packets take the packet path
        cuts = [0, *dict.fromkeys(1 + i // 5 for i in breaks.tolist()), count]
    cnt_key, length_key, offset_key = ((IMMEDIATE >> hab) | k for k in range(1, 4))
    mask = (1 << hab) - 1
    runs = []
    for c0, c1 in zip(cuts[:-1], cuts[1:], strict=True):
        if c1 - c0 < 2:
            continue
        # The words of packets c0 + 1 .. c1 - 1 are c0's but for the offset,
        # so its checks are theirs, and they are regular while their payload
        # fits in the heap (the offset then never carries into the key).
        _, cnt_word, length_word, offset_word, _ = rows[c0].tolist()
        length = length_word & mask
        offset = offset_word & mask
        if cnt_word >> hab != cnt_key or length_word >> hab != length_key or offset_word >> hab != offset_key:
            continue
        fit = min(c1 - c0, (length - offset) // plen)  # < 1 if the first is beyond the heap
        if fit >= 2:
            runs.append(Run(index + c0, index + c0 + fit - 1, cnt_word & mask, length, offset, plen, hab))
    return count, runs


def packets_like(view: memoryview, template: int, size: int, count: int) -> int:
    """How many of the places ``template + j * size`` (``j = 1 .. count``) hold a packet framed like the template.

    Consecutive from ``j = 1``. The template, at ``template``, is a packet
    of exactly ``size`` bytes (as :func:`.packet.packet_size` measured it)
    with at most :data:`MAX_SINGLE_POINTERS` item pointers. A packet counts
    when its header word and the IDs and addressing modes of all its
    pointers are the template's and its last PAYLOAD_LENGTH pointer is the
    template's word (so ``packet_size`` would measure ``size`` too), and it
    ends within ``view``: framing a byte stream of equal packets of any
    layout without measuring them one by one.
    """
    return framed_like(view, template, size, count)[0]


def framed_like(
    view: memoryview, template: int, size: int, count: int
) -> tuple[int, npt.NDArray[np.uint64] | None]:
    """:func:`packets_like`, with the header words of the template and the packets it counts.

    Returns ``(k, rows)``: ``rows`` is a strided ``(1 + k, 1 + pointers)``
    big-endian view of the header word and item pointers of the template
    and the ``k`` packets (``None`` if ``k`` is 0). A reader of memory hands
    it over with the batch (:class:`PacketBatch` ``framed``), so that
    :func:`single_packet_heaps` reads these headers from it and does not
    check again what framing checked.
    """
    offset = template + size
    count = min(count, (len(view) - offset) // size)
    if count <= 0 or size < 8:
        return 0, None
    first = int.from_bytes(view[template : template + 8])
    address_width = (first >> 32) & 0xFF
    n = first & 0xFFFF
    if not 0 < address_width < 8 or not 0 < n <= MAX_SINGLE_POINTERS or 8 + 8 * n > size:
        return 0, None
    hab = np.uint64(8 * address_width)
    pointers = np.ndarray((n,), dtype=">u8", buffer=view, offset=template + 8)
    keys = pointers >> hab
    plen_key = (IMMEDIATE >> (8 * address_width)) | 4
    plen_slots = np.flatnonzero(keys == np.uint64(plen_key))
    if not len(plen_slots):
        return 0, None
    slot = int(plen_slots[-1])
    # The packets are evenly spaced by assumption: a strided view, no gather.
    rows = np.ndarray((1 + count, 1 + n), dtype=">u8", buffer=view, offset=template, strides=(size, 8))
    others = rows[1:, 1:]
    good = (
        (rows[1:, 0] == np.uint64(first))
        & ((others >> hab) == keys).all(axis=1)
        & (others[:, slot] == pointers[slot])
    )
    bad = np.flatnonzero(~good)
    if len(bad):
        count = int(bad[0])
        rows = rows[: 1 + count]
    return count, rows if count else None


def immediate_values(
    batch: PacketBatch, item_ids: Sequence[int], max_pointers_limit: int = 16
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]] | None:
    """Each packet's HEAP_CNT and the values of immediate items ``item_ids``, parsed at once.

    Returns ``(cnt, values)``: ``values[i, k]`` is the value of the last
    immediate pointer of packet ``i`` with ID ``item_ids[k]``, or -1. IDs 1
    to 4 (HEAP_CNT ... PAYLOAD_LENGTH) are read the same way. ``None`` when
    the batch is not worth it: small, tiny packets, or packets of another
    flavour than the first, or with more than ``max_pointers_limit`` pointers. The
    figures are a best guess for packets that are malformed: callers use them
    only where the packet path would compute the same values.
    """
    n = len(batch)
    if n < MIN_VECTOR_BATCH:
        return None
    view = batch.view
    starts = np.asarray(batch.starts, dtype=np.intp)
    alignment = int(starts[0]) & 7
    if not ((starts & 7) == alignment).all() or int(starts[-1]) + 8 > len(view):
        return None
    words = np.frombuffer(view, dtype=">u8", count=(len(view) - alignment) // 8, offset=alignment)
    first_words = (starts - alignment) >> 3
    header = words[first_words]
    address_width = (int(header[0]) >> 32) & 0xFF
    if not 0 < address_width < 8 or ((header >> np.uint64(32)) & np.uint64(0xFF) != address_width).any():
        return None
    hab = 8 * address_width
    counts = (header & np.uint64(0xFFFF)).astype(np.intp)
    max_pointers = int(counts.max())
    if not 0 < max_pointers <= max_pointers_limit or int(first_words[-1]) + max_pointers >= len(words):
        return None
    pointers = words[first_words[:, None] + np.arange(1, max_pointers + 1, dtype=np.intp)]
    present = np.arange(max_pointers)[None, :] < counts[:, None]
    keys = pointers >> np.uint64(hab)  # immediate flag and ID
    values = (pointers & np.uint64((1 << hab) - 1)).astype(np.int64)
    immediate = IMMEDIATE >> hab
    out = np.full((n, len(item_ids)), -1, dtype=np.int64)
    columns = np.arange(max_pointers)
    for k, item_id in enumerate(item_ids):
        match = present & (keys == np.uint64(immediate | item_id))
        last = np.where(match, columns[None, :], -1).max(axis=1)
        found = last >= 0
        out[found, k] = values[found, last[found]]
    cnt_match = present & (keys == np.uint64(immediate | 1))
    last = np.where(cnt_match, columns[None, :], -1).max(axis=1)
    cnt = np.where(last >= 0, values[np.arange(n), np.maximum(last, 0)], -1)
    return cnt.astype(np.uint64), out


class SingleHeaps:
    """The packets of a batch that each carry a whole heap laid out like one template packet.

    ``fast[i]`` says whether packet ``i`` is one (see :func:`single_packet_heaps`);
    for those, ``cnt[i]`` is its HEAP_CNT, ``length[i]`` its heap (= payload)
    length, and its payload is ``view[payload_start[i] : payload_end[i]]``.
    ``rest`` holds, per packet, its item pointers other than the four
    per-packet fields (``(n, k)`` ``uint64``), in packet order: what
    :func:`.packet.decode_packet` returns as the heap's pointers. They have
    the template's IDs and addressing modes, and its addresses; only
    immediate values may differ. ``shared`` is the template's pointers as a
    tuple when every fast packet's are the same words (else ``None``);
    ``count`` the number of fast packets; ``header_size`` the bytes before
    each fast packet's payload; ``keys`` the template's ``rest`` pointers
    shifted right by ``hab`` (immediate flag and ID). ``fast_mask``,
    ``length_array`` and ``start_array`` are ``fast``, ``length`` and
    ``payload_start`` as numpy arrays (for vectorised callers).
    """

    __slots__ = (
        "fast", "cnt", "length", "payload_start", "payload_end", "hab", "rest", "shared", "count",
        "header_size", "keys", "fast_mask", "length_array", "start_array",
    )

    def __init__(
        self, fast: list[bool], cnt: list[int], length: list[int], payload_start: list[int],
        payload_end: list[int], hab: int, rest: npt.NDArray[np.uint64], shared: tuple[int, ...] | None,
        count: int, header_size: int, keys: npt.NDArray[np.uint64],
        fast_mask: npt.NDArray[np.bool_] | None = None, length_array: npt.NDArray[np.int64] | None = None,
        start_array: npt.NDArray[np.intp] | None = None,
    ) -> None:
        self.fast_mask = np.array(fast, dtype=bool) if fast_mask is None else fast_mask
        self.length_array = np.array(length, dtype=np.int64) if length_array is None else length_array
        self.start_array = np.array(payload_start, dtype=np.intp) if start_array is None else start_array
        self.fast = fast
        self.cnt = cnt
        self.length = length
        self.payload_start = payload_start
        self.payload_end = payload_end
        self.hab = hab
        self.rest = rest
        self.shared = shared
        self.count = count
        self.header_size = header_size
        self.keys = keys

    def items(self, item_ids: Sequence[int]) -> npt.NDArray[np.int64]:
        """Per packet, the values of ``item_ids`` a chunk place callback gets (``(n, k)``).

        HEAP_CNT, HEAP_LENGTH, PAYLOAD_OFFSET and PAYLOAD_LENGTH from the
        per-packet fields; any other ID from the last immediate pointer with
        that ID; -1 where there is none. Meaningful for fast packets only.
        """
        n = len(self.fast)
        out = np.full((n, len(item_ids)), -1, dtype=np.int64)
        mask = np.uint64((1 << self.hab) - 1)
        immediate = IMMEDIATE >> self.hab
        for k, item_id in enumerate(item_ids):
            if item_id in (1, 2, 4):
                out[:, k] = self.cnt if item_id == 1 else self.length
            elif item_id == 3:
                out[:, k] = 0
            elif 0 <= item_id < immediate:  # an ID the pointers can carry
                columns = np.flatnonzero(self.keys == np.uint64(immediate | item_id))
                if len(columns):
                    out[:, k] = (self.rest[:, columns[-1]] & mask).astype(np.int64)
        return out


def single_packet_heaps(batch: PacketBatch, stop_words: list[int] | None) -> SingleHeaps | None:
    """Find, with one numpy pass, the packets of ``batch`` that are each a whole, plain heap.

    The template is the packet in the middle of the batch. A packet is *fast*
    when the packet path would decode it exactly as one heap of its own, with
    nothing to look at: its header word and the IDs and addressing modes of
    all its item pointers are the template's, the first four pointers being
    the immediate HEAP_CNT, HEAP_LENGTH, PAYLOAD_OFFSET and PAYLOAD_LENGTH;
    its addressed pointers are the template's words (their addresses fit
    the heap); PAYLOAD_OFFSET is 0, PAYLOAD_LENGTH equals HEAP_LENGTH and
    the packet is exactly its header plus payload; and no pointer is a stop
    item (``stop_words[address width in bytes]``, see
    :func:`.live_heaps.stop_words`; ``None``: stop items are ignored). Whether
    its heap is already live is for the caller to check.

    ``None`` when fewer than half the packets are fast (or the batch is
    small, or the template is not such a packet).
    """
    n = len(batch)
    if n < MIN_VECTOR_BATCH:
        return None
    view = batch.view
    middle = n // 2
    t_start = int(batch.starts[middle])
    t_size = int(batch.sizes[middle])
    decoded = decode_packet(view[t_start : t_start + t_size])
    if decoded is None:
        return None
    _, t_length, t_offset, t_plen, hab, payload_start, t_rest = decoded
    n_words = payload_start // 8  # the header and every pointer
    if t_offset != 0 or t_plen != t_length or n_words - 1 > MAX_SINGLE_POINTERS:
        return None
    template = np.frombuffer(view, dtype=">u8", count=n_words, offset=t_start)
    shift = np.uint64(hab)
    keys = template[1:] >> shift
    field_keys = _FIELD_KEYS[hab >> 3]
    assert field_keys is not None
    if not (keys[:4] == field_keys).all() or (
        (keys[4:] >= field_keys[0]) & (keys[4:] <= field_keys[3])
    ).any():
        return None  # other places for the per-packet fields: the packet path does it
    starts = np.asarray(batch.starts, dtype=np.intp)
    sizes = np.asarray(batch.sizes, dtype=np.intp)
    # A packet shorter than the template's header cannot be fast (its size
    # must be header + payload); clamp where its words are read so the
    # gather stays inside the buffer.
    limit = len(view) - payload_start
    framed = batch.framed
    if framed is not None and framed[0] <= middle < framed[0] + len(framed[1]) and framed[1].shape[1] == n_words:
        # The template is one of the packets the reader framed like the
        # first of them: they all have its header word and pointer IDs and
        # modes (so its number of words), and their words are at hand.
        first, rows = framed
        last = first + len(rows)
        if first == 0 and last == n:
            words = rows.astype(np.uint64)  # the usual batch: one stretch
            like = None
        else:
            words = np.empty((n, n_words), dtype=np.uint64)
            words[first:last] = rows
            outside = np.r_[0:first, last:n]
            others = words[outside] = _gather_words(view, np.minimum(starts[outside], limit), n_words)
            like = np.ones(n, dtype=bool)
            like[outside] = (others[:, 0] == template[0]) & ((others[:, 1:] >> shift) == keys).all(axis=1)
    else:
        read_at = np.minimum(starts, limit) if int(starts.max()) > limit else starts
        words = _gather_words(view, read_at, n_words)
        like = (words[:, 0] == template[0]) & ((words[:, 1:] >> shift) == keys).all(axis=1)
    mask = np.uint64((1 << hab) - 1)
    cnt = words[:, 1] & mask
    length = words[:, 2] & mask
    plen = words[:, 4] & mask
    rest = words[:, 5:]
    immediate = (keys[4:] >> np.uint64(63 - hab)).astype(bool)  # per pointer column
    fast = (
        ((words[:, 3] & mask) == 0)
        & (plen == length)
        & (plen + np.uint64(payload_start) == sizes.astype(np.uint64))
    )
    if like is not None:
        fast &= like
    if not immediate.all():
        # Addressed pointers: the template's words exactly (so the addresses fit).
        fast &= (rest[:, ~immediate] == template[5:][~immediate]).all(axis=1)
    if stop_words is not None and immediate.any():
        fast &= (rest[:, immediate] != np.uint64(stop_words[hab >> 3])).all(axis=1)
    count = int(np.count_nonzero(fast))
    if 2 * count < n:
        return None
    shared: tuple[int, ...] | None = t_rest
    if immediate.any() and not (rest[fast] == template[5:]).all():
        shared = None
    payload_starts = starts + payload_start
    return SingleHeaps(
        fast.tolist(), cnt.tolist(), length.tolist(), payload_starts.tolist(),
        (starts + sizes).tolist(), hab, rest, shared, count, payload_start, keys[4:],
        fast, length.astype(np.int64), payload_starts,
    )


def _gather_words(view: memoryview, starts: npt.NDArray[np.intp], count: int) -> npt.NDArray[np.uint64]:
    """The first ``count`` big-endian 64-bit words of each packet, native order: ``(n, count)``."""
    columns = np.arange(count, dtype=np.intp)
    alignment = int(starts[0]) & 7
    if ((starts & 7) == alignment).all():
        words = np.frombuffer(view, dtype=">u8", count=(len(view) - alignment) // 8, offset=alignment)
        gathered = words[((starts - alignment) >> 3)[:, None] + columns]
    else:
        buffer = np.frombuffer(view, dtype=np.uint8)
        gathered = buffer[starts[:, None] + np.arange(8 * count, dtype=np.intp)].view(">u8")
    return gathered.astype(np.uint64)
