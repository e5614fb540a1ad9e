"""``spead2.send.Heap`` and ``PacketGenerator``: a heap to send and its packets as bytes.

A heap records its item pointers in ``add_*`` call order. Item values are
kept by reference (a view of the buffer ``Item.to_buffer()`` returned), never
copied, so changing a numpy value in place changes what later sends carry,
as with the reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..protocols.constants import (
    CTRL_STREAM_START,
    CTRL_STREAM_STOP,
    DESCRIPTOR_ID,
    STREAM_CTRL_ID,
)
from ..protocols.descriptors import encode_descriptor
from ..protocols.flavour import Flavour
from ..protocols.packetizer import HeapEntry, HeapPacketizer
from ..protocols.raw_descriptor import RawDescriptor

__all__ = ["Heap", "PacketGenerator"]

_DEFAULT_FLAVOUR = Flavour()
_START_VALUE = memoryview(bytes([CTRL_STREAM_START]))
_STOP_VALUE = memoryview(bytes([CTRL_STREAM_STOP]))


class _SendableItem(Protocol):
    """What ``Heap.add_item`` uses of an item (``spead2.Item`` has it)."""

    id: int

    def to_buffer(self) -> Any: ...

    def allow_immediate(self) -> bool: ...


class _DescribableItem(Protocol):
    """What ``Heap.add_descriptor`` uses of a descriptor (``spead2.Descriptor`` has it)."""

    def to_raw(self, flavour: Flavour) -> RawDescriptor: ...


def _byte_view(buffer: Any) -> memoryview:
    """A flat byte view of ``buffer`` that shares its memory whenever possible.

    Only a non-contiguous buffer is copied (a memoryview cannot flatten it).
    """
    try:
        view = memoryview(buffer)
    except (TypeError, ValueError):
        # numpy refuses to export some dtypes (e.g. datetime64) through the
        # buffer protocol, but their bytes can still be viewed as uint8.
        import numpy

        if not isinstance(buffer, numpy.ndarray):
            raise
        view = memoryview(numpy.ascontiguousarray(buffer).reshape(-1).view(numpy.uint8))
    if view.ndim == 1 and view.format == "B":
        return view
    if view.nbytes == 0:
        # memoryview.cast refuses shapes containing 0 (e.g. (2, 0)): there
        # are no bytes to share anyway.
        return memoryview(b"")
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B")


class Heap:
    """A heap to send: item values, descriptors and stream-control items, in call order.

    The same heap may be sent any number of times (with different cnts).
    """

    __slots__ = (
        "_flavour",
        "_repeat_pointers",
        "_entries",
        "_id_limit",
        "_immediate_bytes",
        "__weakref__",
    )

    def __init__(self, flavour: Flavour = _DEFAULT_FLAVOUR) -> None:
        if not isinstance(flavour, Flavour):
            raise TypeError(f"flavour must be a spead2.Flavour, not {type(flavour).__name__}")
        bits = flavour.heap_address_bits
        self._flavour = flavour
        self._repeat_pointers = False
        self._entries: list[HeapEntry] = []
        self._id_limit = 1 << (63 - bits)
        self._immediate_bytes = bits // 8

    @property
    def flavour(self) -> Flavour:
        """The SPEAD flavour the heap is encoded in."""
        return self._flavour

    @property
    def repeat_pointers(self) -> bool:
        """Put every item pointer in every packet (needs room for all of them)."""
        return self._repeat_pointers

    @repeat_pointers.setter
    def repeat_pointers(self, value: bool) -> None:
        self._repeat_pointers = bool(value)

    @property
    def entries(self) -> Sequence[HeapEntry]:
        """The item pointers as ``(id, immediate, value view)``, in call order.

        Not part of the reference API: it is what the packetizer reads. Do not
        modify it.
        """
        return self._entries

    def _check_id(self, item_id: int) -> int:
        # The reference silently masks IDs to the flavour's ID width (so an ID
        # can turn into 0 = NULL); we refuse instead.
        if not 0 <= item_id < self._id_limit:
            bits = self._flavour.heap_address_bits
            raise ValueError(
                f"Item ID out of range: {item_id:#x} does not fit in the {63 - bits}-bit "
                f"item ID field of SPEAD-64-{bits} (maximum {self._id_limit - 1:#x})"
            )
        return item_id

    def add_item(self, item: _SendableItem) -> None:
        """Add ``item``'s current value (encoded now, referenced not copied).

        The value is an immediate when the item allows it and it fits in the
        flavour's address field (right-aligned), and addressed otherwise.
        Encoding errors (no value, wrong shape, out of range) raise here.
        """
        view = _byte_view(item.to_buffer())
        item_id = self._check_id(int(item.id))
        immediate = bool(item.allow_immediate()) and view.nbytes <= self._immediate_bytes
        self._entries.append((item_id, immediate, view))

    def add_descriptor(self, descriptor: _DescribableItem) -> None:
        """Add ``descriptor`` as a ``DESCRIPTOR_ID`` item (a nested packet in this flavour)."""
        encoded = encode_descriptor(descriptor.to_raw(self._flavour), self._flavour)
        self._entries.append((DESCRIPTOR_ID, False, memoryview(encoded)))

    def add_start(self) -> None:
        """Add a stream-control item with value ``CTRL_STREAM_START``."""
        self._entries.append((STREAM_CTRL_ID, True, _START_VALUE))

    def add_end(self) -> None:
        """Add a stream-control item with value ``CTRL_STREAM_STOP``."""
        self._entries.append((STREAM_CTRL_ID, True, _STOP_VALUE))

    def __repr__(self) -> str:
        return f"<spead2.send.Heap {len(self._entries)} items, {self._flavour!r}>"


class PacketGenerator:
    """The packets (as ``bytes``) a stream would send for ``heap`` with heap counter ``cnt``.

    Single-use iterator, like the reference. Packet-size problems raise
    ``ValueError`` from the constructor, e.g. ``"packet size is too small"``.
    """

    __slots__ = ("_packetizer",)

    def __init__(self, heap: Heap, cnt: int, max_packet_size: int) -> None:
        bits = heap.flavour.heap_address_bits
        cnt = int(cnt)
        # The reference masks an oversized cnt into the ID bits; refuse it.
        if not 0 <= cnt < 1 << bits:
            raise ValueError(
                f"cnt out of range: {cnt} does not fit in the {bits}-bit value field "
                f"of SPEAD-64-{bits}"
            )
        self._packetizer = HeapPacketizer(heap, cnt, int(max_packet_size))

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        packet = self._packetizer.next_packet()
        if packet is None:
            raise StopIteration
        return b"".join(packet)
