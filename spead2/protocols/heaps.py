"""Received heaps: the records the assembler produces and ``ItemGroup.update`` consumes.

A heap keeps the raw 64-bit item pointers it received (minus the four
per-packet fields) and its payload buffer; items are worked out lazily, only
when someone asks, so a consumer that never looks pays nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from operator import itemgetter
from sys import getrefcount

from .constants import (
    CTRL_STREAM_START,
    CTRL_STREAM_STOP,
    DESCRIPTOR_ID,
    IMMEDIATE,
    NULL_ID,
    STREAM_CTRL_ID,
)
from .flavour import Flavour
from .raw_descriptor import RawDescriptor
from .report import Report, ignore

#: Spare payload buffers a stream keeps for reuse (see ``Heap.__del__``).
RECYCLE_BUFFERS = 4
#: IDs that get_items() never reports: NULL, the packet fields and descriptor pointers.
_HIDDEN_IDS = frozenset(range(NULL_ID, DESCRIPTOR_ID + 1))


class RawItem:
    """One item of a received heap: its ID and the bytes of its value.

    Supports the buffer protocol (1-D, format ``'B'``, writable). For an
    addressed item the buffer is a view into the heap's payload; for an
    immediate it is the ``heap_address_bits // 8`` bytes of the pointer's value
    field, big-endian.
    """

    __slots__ = ("_id", "_is_immediate", "_value", "_buffer")

    def __init__(self, id: int, is_immediate: bool, value: int, buffer: memoryview) -> None:
        self._id = id
        self._is_immediate = is_immediate
        self._value = value
        self._buffer = buffer

    @property
    def id(self) -> int:
        """Item ID."""
        return self._id

    @property
    def is_immediate(self) -> bool:
        """Whether the value was carried in the item pointer itself."""
        return self._is_immediate

    @property
    def immediate_value(self) -> int:
        """The pointer's value field; for an addressed item, its heap offset."""
        return self._value

    def __buffer__(self, flags: int) -> memoryview:
        return self._buffer

    def __len__(self) -> int:
        return len(self._buffer)

    def __repr__(self) -> str:
        kind = "immediate" if self._is_immediate else "addressed"
        return f"<RawItem id={self._id:#x} {kind} {len(self._buffer)} bytes>"


_first = itemgetter(0)


def _split(pointer: int, address_bits: int) -> tuple[int, bool, int]:
    """(id, is_immediate, address-or-value) of a 64-bit item pointer."""
    return (
        (pointer & ~IMMEDIATE) >> address_bits,
        bool(pointer & IMMEDIATE),
        pointer & ((1 << address_bits) - 1),
    )


def immediate_items(pointers: Sequence[int], address_bits: int) -> list[RawItem]:
    """The reportable immediate items of ``pointers``, sorted by value."""
    width = address_bits // 8
    items = []
    for pointer in pointers:
        item_id, immediate, value = _split(pointer, address_bits)
        if immediate and item_id not in _HIDDEN_IDS:
            items.append(RawItem(item_id, True, value, memoryview(bytearray(value.to_bytes(width)))))
    items.sort(key=lambda item: item.immediate_value)
    return items


class HeapBase:
    """What complete and incomplete heaps have in common."""

    __slots__ = ("_cnt", "_flavour", "_raw_pointers", "_unique")

    def __init__(self, cnt: int, flavour: Flavour, pointers: Sequence[int]) -> None:
        self._cnt = cnt
        self._flavour = flavour
        # Kept as given: a heap nobody inspects costs no more than this.
        self._raw_pointers = pointers
        self._unique: tuple[int, ...] | None = None

    @property
    def _pointers(self) -> tuple[int, ...]:
        # The same pointer word repeated (e.g. by a sender using
        # repeat_pointers) says nothing new: keep its first occurrence only.
        if self._unique is None:
            self._unique = tuple(dict.fromkeys(self._raw_pointers))
        return self._unique

    @property
    def cnt(self) -> int:
        """Heap counter (the heap's identifier)."""
        return self._cnt

    @property
    def flavour(self) -> Flavour:
        """Flavour the heap was received in (bug_compat is the stream's setting)."""
        return self._flavour

    def get_items(self) -> list[RawItem]:
        """Items of the heap (see subclasses for which)."""
        raise NotImplementedError

    def _control_values(self) -> list[int]:
        bits = self._flavour.heap_address_bits
        values = []
        for pointer in self._pointers:
            item_id, immediate, value = _split(pointer, bits)
            if immediate and item_id == STREAM_CTRL_ID:
                values.append(value)
        return values

    def is_start_of_stream(self) -> bool:
        """Whether the heap carries a stream-control *start* item."""
        return CTRL_STREAM_START in self._control_values()

    def is_end_of_stream(self) -> bool:
        """Whether the heap carries a stream-control *stop* item."""
        return CTRL_STREAM_STOP in self._control_values()


class Heap(HeapBase):
    """A complete received heap."""

    __slots__ = ("_payload", "_layout", "_recycle")

    def __init__(
        self,
        cnt: int,
        flavour: Flavour,
        pointers: Sequence[int],
        payload: bytearray | memoryview,
        recycle: deque[bytearray] | None = None,
    ) -> None:
        # HeapBase.__init__ inlined: one heap per packet is made on the hot path.
        self._cnt = cnt
        self._flavour = flavour
        self._raw_pointers = pointers
        self._unique = None
        self._payload = payload
        self._layout: list[tuple[int, int, int]] | None = None
        #: Where the payload goes when the heap dies with nothing else using
        #: it (the assembler's spare buffers), or None.
        self._recycle = recycle

    # The defaults bind what __del__ uses: at interpreter exit a module's
    # globals may already be gone when the last heaps die.
    def __del__(self, _refs: Callable[[object], int] = getrefcount, _limit: int = RECYCLE_BUFFERS) -> None:
        recycle = self._recycle
        # Two references (the slot, and getrefcount's argument) mean no item
        # value, memoryview or numpy array still uses the buffer, so the
        # assembler may fill it again.
        if recycle is not None and len(recycle) < _limit and _refs(self._payload) == 2:
            recycle.append(self._payload)  # type: ignore[arg-type]

    @property
    def payload(self) -> memoryview:
        """The heap's whole payload (not part of the reference API; used by tools)."""
        return memoryview(self._payload)

    def _addressed(self) -> list[tuple[int, int, int]]:
        """(id, address, length) of every addressed pointer, in address order.

        An item's value runs to the next address at or above it among *all*
        addressed pointers, NULL and descriptor pointers included, so with two
        pointers at one address the earlier gets length 0. Worked out once:
        ``ItemGroup.update`` asks for it twice (descriptors, then values).
        """
        result = self._layout
        if result is not None:
            return result
        bits = self._flavour.heap_address_bits
        mask = (1 << bits) - 1
        end = len(self._payload)
        # (address, id) of each addressed pointer; immediates have the top bit set.
        located = [(word & mask, word >> bits) for word in self._pointers if word < IMMEDIATE]
        if len(located) > 1:
            located.sort(key=_first)  # stable: equal addresses keep pointer order
        result = []
        last = len(located) - 1
        for i, (address, item_id) in enumerate(located):
            following = located[i + 1][0] if i < last else end
            result.append((item_id, address, min(following, end) - address))
        self._layout = result
        return result

    def get_items(self) -> list[RawItem]:
        """Addressed items in address order, then immediates in value order.

        NULL, the four per-packet fields and descriptor pointers are hidden; so
        are addressed items of length zero (there is no value to decode).
        """
        payload = memoryview(self._payload)
        items = [
            RawItem(item_id, False, address, payload[address : address + length])
            for item_id, address, length in self._addressed()
            if length > 0 and item_id not in _HIDDEN_IDS
        ]
        if self._has_immediates():
            items.extend(immediate_items(self._pointers, self._flavour.heap_address_bits))
        return items

    def _has_immediates(self) -> bool:
        for word in self._pointers:
            if word >= IMMEDIATE:
                return True
        return False

    def get_descriptors(self, report: Report = ignore) -> list[RawDescriptor]:
        """Descriptors carried by the heap, in address order; unparsable ones are skipped.

        ``report`` is told why each is skipped (see :mod:`.report`).
        """
        result: list[RawDescriptor] = []
        for item_id, address, length in self._addressed():
            if item_id == DESCRIPTOR_ID and length > 0:
                from .descriptors import decode_descriptors

                value = memoryview(self._payload)[address : address + length]
                result.extend(decode_descriptors(value, self._flavour.bug_compat, report))
        return result

    def __repr__(self) -> str:
        return f"<spead2.recv.Heap cnt={self._cnt} {len(self._payload)} bytes>"


class IncompleteHeap(HeapBase):
    """A heap of which only part of the payload arrived.

    Only its immediate items are available; the payload itself is not kept.
    """

    __slots__ = ("_heap_length", "_received_length", "_payload_ranges")

    def __init__(
        self,
        cnt: int,
        flavour: Flavour,
        pointers: Sequence[int],
        heap_length: int,
        received_length: int,
        payload_ranges: list[tuple[int, int]],
    ) -> None:
        super().__init__(cnt, flavour, pointers)
        self._heap_length = heap_length
        self._received_length = received_length
        self._payload_ranges = payload_ranges

    @property
    def heap_length(self) -> int:
        """Expected payload length, or -1 if the heap did not say."""
        return self._heap_length

    @property
    def received_length(self) -> int:
        """Payload bytes that arrived."""
        return self._received_length

    @property
    def payload_ranges(self) -> list[tuple[int, int]]:
        """Merged ``(start, end)`` byte ranges received (empty unless the ring config keeps them)."""
        return list(self._payload_ranges)

    def get_items(self) -> list[RawItem]:
        """The immediate items only: addressed values may not have arrived."""
        return immediate_items(self._pointers, self._flavour.heap_address_bits)

    def __repr__(self) -> str:
        return (
            f"<spead2.recv.IncompleteHeap cnt={self._cnt} "
            f"{self._received_length}/{self._heap_length} bytes>"
        )
