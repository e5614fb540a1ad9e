"""Send side: one heap and its cnt become a sequence of packets, byte for byte as spead2 4.5.1.

Each packet is a list of buffers: the header and item pointers in one
``bytes`` object, then zero-copy slices of the item buffers and, at the end
of the heap, padding. The caller sends the list with scatter/gather I/O or
joins it; the payload is never copied here.

Everything that depends only on the heap is worked out in the constructor, so
``next_packet`` packs one header and slices a few buffers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Protocol

from .constants import (
    HEAP_CNT_ID,
    HEAP_LENGTH_ID,
    IMMEDIATE,
    MAGIC,
    NULL_ID,
    PAYLOAD_LENGTH_ID,
    PAYLOAD_OFFSET_ID,
    VERSION,
)
from .flavour import Flavour

__all__ = ["HeapEntry", "HeapPacketizer", "PacketSource", "Packet"]

#: Packet header (magic, version, widths, reserved) followed by n_items and the
#: four per-packet immediates, in the order spead2 sends them.
_PREFIX = struct.Struct(">6sH4Q")
#: Bytes of header + the four per-packet pointers.
_FIXED = _PREFIX.size
#: Packet size is rounded down to this; the smallest usable one is this many bytes.
_MIN_PACKET_SIZE = 56

#: One item pointer of a send heap: (item ID, is immediate, value bytes as a
#: flat 1-D memoryview of format ``'B'``). An immediate's value is read
#: (big-endian, right-aligned) when a packetizer is made, so in-place changes
#: to the item's buffer show in later sends.
HeapEntry = tuple[int, bool, memoryview]
#: One packet: a list of buffers whose concatenation is the packet.
Packet = list[bytes | memoryview]


class PacketSource(Protocol):
    """What the packetizer needs from a send heap (``spead2.send.Heap`` provides it)."""

    @property
    def flavour(self) -> Flavour:
        """The heap's flavour."""
        ...

    @property
    def repeat_pointers(self) -> bool:
        """Whether every packet carries every item pointer."""
        ...

    @property
    def entries(self) -> Sequence[HeapEntry]:
        """The heap's item pointers in ``add_*`` call order."""
        ...


class HeapPacketizer:
    """Cuts one heap with heap counter ``cnt`` into packets of at most ``max_packet_size`` bytes.

    All configuration errors are raised here, before any packet exists:

    - ``max_packet_size`` rounded down to a multiple of 8 below 56 →
      ``ValueError("packet size is too small")``;
    - ``repeat_pointers`` and not enough room for every pointer →
      ``ValueError("packet size is too small to repeat item pointers")``;
    - heap payload too long for the flavour's address field → ``ValueError``.

    ``cnt`` must already be valid (``0 <= cnt < 2**heap_address_bits``); the
    send stream checks it. Iterating yields the packets; so does calling
    :meth:`next_packet` until it returns ``None``.
    """

    __slots__ = (
        "_prefix",
        "_cnt_pointer",
        "_length_pointer",
        "_offset_pointer",
        "_plen_pointer",
        "_pointer_bytes",
        "_n_pointers",
        "_max_pointers",
        "_packet_room",
        "_repeat",
        "_segments",
        "_heap_length",
        "_pointer_index",
        "_offset",
        "_segment_index",
        "_segment_offset",
        "_n_packets",
    )

    def __init__(self, heap: PacketSource, cnt: int, max_packet_size: int) -> None:
        flavour = heap.flavour
        bits = flavour.heap_address_bits
        mps8 = max_packet_size & ~7
        if mps8 < _MIN_PACKET_SIZE:
            raise ValueError(
                f"packet size is too small (max_packet_size={max_packet_size}, "
                f"need at least {_MIN_PACKET_SIZE})"
            )
        # At most this many heap pointers per packet, so that a packet full of
        # pointers still has room for 8 bytes of payload.
        max_pointers = (mps8 - _FIXED - 8) // 8
        repeat = bool(heap.repeat_pointers)

        pointers: list[int] = []
        segments: list[memoryview | bytes] = []
        length = 0
        for item_id, immediate, view in heap.entries:
            if immediate:
                if view.nbytes > bits // 8:
                    raise ValueError(
                        f"immediate value of item {item_id:#x} ({view.nbytes} bytes) does not "
                        f"fit in the {bits}-bit value field of SPEAD-64-{bits}"
                    )
                pointers.append(IMMEDIATE | (item_id << bits) | int.from_bytes(view))
            else:
                pointers.append((item_id << bits) | length)
                if view.nbytes:
                    segments.append(view)
                    length += view.nbytes
        n_heap_pointers = len(pointers)

        if repeat:
            if n_heap_pointers + 1 > max_pointers:
                raise ValueError(
                    f"packet size is too small to repeat item pointers "
                    f"(max_packet_size={max_packet_size} holds {max_pointers - 1} item "
                    f"pointers, heap has {n_heap_pointers})"
                )
            padded_length = 1 if length == 0 else length
        else:
            # Every packet that carries a full load of pointers must still carry
            # payload (a receiver needs offsets to progress), hence the padding.
            padded_length = max(length, 8 * (n_heap_pointers // max_pointers) + 1)
        if padded_length > length:
            # The NULL pointer marks where the real data ends, so the last real
            # item does not swallow the padding. Real bytes first, zeros after.
            pointers.append((NULL_ID << bits) | length)
            segments.append(bytes(padded_length - length))
        if padded_length >> bits:
            raise ValueError(
                f"heap too large for flavour: heap length {padded_length} does not fit "
                f"in the {bits}-bit address field of SPEAD-64-{bits}"
            )

        self._prefix = bytes((MAGIC, VERSION, (64 - bits) // 8, bits // 8, 0, 0))
        self._cnt_pointer = IMMEDIATE | (HEAP_CNT_ID << bits) | cnt
        self._length_pointer = IMMEDIATE | (HEAP_LENGTH_ID << bits) | padded_length
        self._offset_pointer = IMMEDIATE | (PAYLOAD_OFFSET_ID << bits)
        self._plen_pointer = IMMEDIATE | (PAYLOAD_LENGTH_ID << bits)
        self._n_pointers = len(pointers)
        self._pointer_bytes = struct.pack(f">{len(pointers)}Q", *pointers)
        self._repeat = repeat
        if repeat:
            self._max_pointers = self._n_pointers
            self._packet_room = mps8 - _FIXED - 8 * self._n_pointers
        else:
            self._max_pointers = max_pointers
            self._packet_room = mps8 - _FIXED
        self._segments = segments
        self._heap_length = padded_length
        self._pointer_index = 0
        self._offset = 0
        self._segment_index = 0
        self._segment_offset = 0
        self._n_packets = 0

    @property
    def heap_length(self) -> int:
        """Payload bytes of the heap on the wire, padding included."""
        return self._heap_length

    @property
    def packets_sent(self) -> int:
        """Packets returned so far."""
        return self._n_packets

    def next_packet(self) -> Packet | None:
        """The next packet as a list of buffers, or ``None`` once the heap is done."""
        offset = self._offset
        if offset >= self._heap_length and (
            self._repeat or self._pointer_index >= self._n_pointers
        ):
            return None
        if self._repeat:
            n = self._n_pointers
            pointer_bytes = self._pointer_bytes
            plen = min(self._packet_room, self._heap_length - offset)
        else:
            start = self._pointer_index
            n = min(self._max_pointers, self._n_pointers - start)
            self._pointer_index = start + n
            pointer_bytes = self._pointer_bytes[8 * start : 8 * (start + n)]
            plen = min(self._packet_room - 8 * n, self._heap_length - offset)
        self._offset = offset + plen
        self._n_packets += 1
        packet: Packet = [
            _PREFIX.pack(
                self._prefix,
                4 + n,
                self._cnt_pointer,
                self._length_pointer,
                self._offset_pointer | offset,
                self._plen_pointer | plen,
            )
            + pointer_bytes
        ]
        # Walk the segments from where the previous packet stopped.
        segments = self._segments
        index = self._segment_index
        seg_offset = self._segment_offset
        while plen:
            segment = segments[index]
            available = len(segment) - seg_offset
            if available <= plen:
                packet.append(segment[seg_offset:] if seg_offset else segment)
                plen -= available
                index += 1
                seg_offset = 0
            else:
                packet.append(segment[seg_offset : seg_offset + plen])
                seg_offset += plen
                plen = 0
        self._segment_index = index
        self._segment_offset = seg_offset
        return packet

    def __iter__(self) -> Iterator[Packet]:
        return self

    def __next__(self) -> Packet:
        packet = self.next_packet()
        if packet is None:
            raise StopIteration
        return packet
