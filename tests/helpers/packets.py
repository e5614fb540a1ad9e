"""SPEAD packets built by hand, byte by byte, for tests of the decoders and assemblers.

``hab`` is the flavour's heap address bits (40 in SPEAD-64-40); item pointers are built
with :func:`imm` (immediate) and :func:`addr` (addressed) and need an item id that fits
in the ``63 - hab`` id bits.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from spead2.protocols.raw_descriptor import RawDescriptor

IMM = 1 << 63
#: An item id of the tests' own (addressed payload items).
ITEM = 0x1000


def imm(item_id: int, value: int, hab: int = 40) -> int:
    """An immediate item pointer."""
    return IMM | (item_id << hab) | value


def addr(item_id: int, address: int, hab: int = 40) -> int:
    """An addressed item pointer: the item's value starts at ``address`` in the heap's payload."""
    return (item_id << hab) | address


def raw_packet(
    pointers: Sequence[int], payload: bytes = b"", hab: int = 40, n_items: int | None = None,
    magic: int = 0x53, version: int = 4, widths: tuple[int, int] | None = None,
) -> bytes:
    """A packet with exactly these pointers; the header fields may be set to lie."""
    id_width, addr_width = widths if widths is not None else ((64 - hab) // 8, hab // 8)
    n = len(pointers) if n_items is None else n_items
    header = struct.pack(">BBBBHH", magic, version, id_width, addr_width, 0, n)
    return header + b"".join(struct.pack(">Q", p) for p in pointers) + bytes(payload)


def packet(
    cnt: int, heap_length: int | None, offset: int, payload: bytes, extra: Iterable[int] = (),
    hab: int = 40,
) -> bytes:
    """A packet with the four fields in the usual order (``heap_length=None``: unsized), then ``extra``."""
    pointers = [imm(1, cnt, hab)]
    if heap_length is not None:
        pointers.append(imm(2, heap_length, hab))
    pointers += [imm(3, offset, hab), imm(4, len(payload), hab), *extra]
    return raw_packet(pointers, payload, hab)


#: The stream-control item's pointers: stop and start.
STOP = imm(6, 2)
START = imm(6, 0)
#: The usual first packet's extra: item ITEM at the payload's start.
ITEM_AT_0 = (addr(ITEM, 0),)


def split(
    cnt: int, payload: bytes, cuts: Sequence[int], extra: Iterable[int] = ITEM_AT_0, sized: bool = True,
) -> list[bytes]:
    """Packets of one heap: ``payload`` cut at ``cuts``; the first carries ``extra``."""
    bounds = [0, *cuts, len(payload)]
    return [
        packet(cnt, len(payload) if sized else None, a, payload[a:b], extra if i == 0 else ())
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def raw_descriptor(
    id: int, name: bytes = b"", description: bytes = b"", format: Sequence[tuple[str, int]] = (),
    shape: Sequence[int | None] = (), numpy_header: bytes = b"",
) -> RawDescriptor:
    """A descriptor's fields as they go on the wire (no checks: tests give odd ones too)."""
    raw = RawDescriptor()
    raw.id = id
    raw.name = name
    raw.description = description
    raw.format = list(format)
    raw.shape = list(shape)
    raw.numpy_header = numpy_header
    return raw
