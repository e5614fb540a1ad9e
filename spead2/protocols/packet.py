"""Decoding one received SPEAD packet, and finding packet boundaries in a byte stream.

The checks are those a spead2 receiver makes, in its order (size, magic
and version, flavour, item count, required items, payload length and
offset); every rejected packet is reported (INFO, see :mod:`.report`) with the
reference's text. This is the per-packet hot path, so it does the least
Python work it can: one precompiled ``struct`` call for the header, one for
all the item pointers, and a fast path for the usual pointer order.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Buffer

from .constants import IMMEDIATE, MAGIC, VERSION
from .report import Report, ignore

__all__ = ["PacketError", "DecodedPacket", "decode_packet", "packet_size"]

_INFO = logging.INFO

_HEADER = struct.Struct(">HBBxxH")
_HEADER_4 = struct.Struct(">HBBxxH4Q")
#: The header and the fourth pointer only (where PAYLOAD_LENGTH usually is).
_HEADER_P3 = struct.Struct(">HBBxxH24xQ")
_MAGIC_VERSION = (MAGIC << 8) | VERSION

#: Pointer unpackers for the common pointer counts, built once; rarer (larger)
#: counts get a fresh Struct, which hostile input cannot turn into unbounded caching.
_POINTER_STRUCTS = [struct.Struct(f">{n}Q") for n in range(261)]


class PacketError(ValueError):
    """A packet header that cannot be valid, so a byte stream cannot be framed past it."""


class _FlavourKeys:
    """Constants for one heap-address width, precomputed so the hot path only compares.

    ``lo``/``hi`` bound the 64-bit words that are immediate pointers with IDs
    1–4 (the per-packet fields); ``k_cnt`` and ``k_plen`` are the exact
    ``word >> hab`` keys of immediate HEAP_CNT and PAYLOAD_LENGTH (HEAP_LENGTH
    and PAYLOAD_OFFSET are ``k_cnt + 1`` and ``k_cnt + 2``).
    """

    __slots__ = ("hab", "mask", "lo", "hi", "k_cnt", "k_plen")

    def __init__(self, hab: int) -> None:
        base = IMMEDIATE >> hab
        self.hab = hab
        self.mask = (1 << hab) - 1
        self.lo = (base | 1) << hab
        self.hi = (base | 5) << hab
        self.k_cnt = base | 1
        self.k_plen = base | 4


# Index = heap-address width in bytes (byte 3 of the header); 0 and 8 are invalid.
_KEYS: list[_FlavourKeys | None] = [None] + [_FlavourKeys(8 * w) for w in range(1, 8)] + [None]

#: Per address width in bytes, for the fast path: (hab, mask, b1, ..., b5) where
#: ``b_k = (immediate | ID k) << hab``.
_FAST_KEYS: list[tuple[int, int, int, int, int, int, int]] = [
    (
        (k.hab, k.mask, *(((IMMEDIATE >> k.hab) | i) << k.hab for i in range(1, 6)))  # type: ignore[misc]
        if k is not None
        else (0, 0, 0, 0, 0, 0, 0)
    )
    for k in _KEYS
]

#: What :func:`decode_packet` returns for a valid packet:
#: ``(heap_cnt, heap_length or -1, payload_offset, payload_length,
#: heap_address_bits, payload_start, heap_pointers)``, where ``heap_pointers``
#: are the packet's item pointers other than the four per-packet fields.
DecodedPacket = tuple[int, int, int, int, int, int, tuple[int, ...]]


def _fields(
    pointers: tuple[int, ...], keys: _FlavourKeys
) -> tuple[int, int, int, int, tuple[int, ...]] | None:
    """The per-packet fields among ``pointers``, and the other pointers.

    A field may appear anywhere and more than once; the last occurrence wins,
    as in the reference. Returns ``None`` if a required field is missing.
    """
    lo = keys.lo
    hi = keys.hi
    hab = keys.hab
    mask = keys.mask
    cnt = length = offset = plen = -1
    rest = []
    for word in pointers:
        if lo <= word < hi:
            field = (word >> hab) & 7
            if field == 1:
                cnt = word & mask
            elif field == 2:
                length = word & mask
            elif field == 3:
                offset = word & mask
            else:
                plen = word & mask
        else:
            rest.append(word)
    if cnt < 0 or offset < 0 or plen < 0:
        return None
    return cnt, length, offset, plen, tuple(rest)


def decode_packet(data: Buffer, report: Report = ignore) -> DecodedPacket | None:
    """Decode the header and item pointers of the packet that is all of ``data``.

    Returns ``None`` (after an INFO ``report``, see :mod:`.report`) for a packet that fails
    any check a spead2 receiver makes (see the module docstring), including a packet
    longer than its header says (``discarding packet due to size mismatch``). Never
    raises for bad content.
    """
    size = len(data)  # type: ignore[arg-type]
    if size >= 40:
        # Fast path for the usual packet: one struct call yields the header and
        # the four per-packet fields, which every spead2 sender puts first and
        # in this order. Anything unusual falls through to the full decoder.
        magic_version, id_width, address_width, n, p0, p1, p2, p3 = _HEADER_4.unpack_from(data)
        if (
            magic_version == _MAGIC_VERSION
            and id_width + address_width == 8
            and 0 < address_width < 8
            and n >= 4
        ):
            # b1..b5 bound the words of immediate HEAP_CNT, HEAP_LENGTH,
            # PAYLOAD_OFFSET and PAYLOAD_LENGTH (field k is [b_k, b_k+1)):
            # comparisons are cheaper than shifting these 64-bit values.
            hab, mask, b1, b2, b3, b4, b5 = _FAST_KEYS[address_width]
            payload_start = 8 + 8 * n
            if payload_start <= size and b1 <= p0 < b2 <= p1 < b3 <= p2 < b4 <= p3 < b5:
                plen = p3 & mask
                heap_length = p1 & mask
                offset = p2 & mask
                if payload_start + plen == size and offset + plen <= heap_length:
                    if n == 4:
                        return p0 & mask, heap_length, offset, plen, hab, payload_start, ()
                    rest: tuple[int, ...] = (
                        _POINTER_STRUCTS[n - 4] if n <= 260 else struct.Struct(f">{n - 4}Q")
                    ).unpack_from(data, 40)
                    for word in rest:
                        if b1 <= word < b5:
                            break
                    else:
                        return p0 & mask, heap_length, offset, plen, hab, payload_start, rest
    return _decode_full(data, size, report)


def _decode_full(data: Buffer, size: int, report: Report = ignore) -> DecodedPacket | None:
    """:func:`decode_packet` for any packet, making every check in the reference's order."""
    if size < 8:
        report(_INFO, "pkt-small", "packet rejected because too small (%d bytes)", size)
        return None
    magic_version, id_width, address_width, n = _HEADER.unpack_from(data)
    if magic_version != _MAGIC_VERSION:
        report(_INFO, "pkt-magic", "packet rejected because magic or version did not match")
        return None
    if id_width + address_width != 8:
        report(_INFO, "pkt-flavour", "packet rejected because flavour is not SPEAD-64-*")
        return None
    keys = _KEYS[address_width]
    if keys is None:
        report(_INFO, "pkt-flavour-invalid", "packet rejected because flavour is invalid")
        return None
    payload_start = 8 + 8 * n
    if payload_start > size:
        report(_INFO, "pkt-items", "packet rejected because the items overflow the packet")
        return None
    pointers: tuple[int, ...] = (
        _POINTER_STRUCTS[n] if n <= 260 else struct.Struct(f">{n}Q")
    ).unpack_from(data, 8)
    fields = _fields(pointers, keys)
    if fields is None:
        report(_INFO, "pkt-required", "packet rejected because it does not have required items")
        return None
    cnt, heap_length, offset, plen, rest = fields
    total = payload_start + plen
    if total > size:
        report(_INFO,
            "pkt-plen",
            "packet rejected because payload length overflows packet size (%d > %d)",
            total,
            size,
        )
        return None
    if heap_length >= 0 and offset + plen > heap_length:
        report(_INFO, "pkt-heaplen", "packet rejected because payload would overflow given heap length")
        return None
    if total != size:
        report(_INFO, "pkt-size", "discarding packet due to size mismatch (%d != %d)", size, total)
        return None
    return cnt, heap_length, offset, plen, keys.hab, payload_start, rest


def packet_size(data: Buffer, offset: int) -> int | None:
    """Total size of the packet starting at ``offset`` of a byte stream.

    Returns ``None`` while ``data`` does not yet hold enough bytes to tell
    (the header, then the item pointers, are needed). Raises
    :class:`PacketError` when the header is not a SPEAD-64-* header or the
    packet has no immediate PAYLOAD_LENGTH, since the stream cannot then be
    framed past it. ``data`` must be a bytes-like object whose ``len`` counts
    bytes (``bytes``, ``bytearray``, or a byte-format ``memoryview``).
    """
    available = len(data) - offset  # type: ignore[arg-type]
    if available >= 40:
        # Fast path: exactly the four per-packet fields, PAYLOAD_LENGTH last
        # (every packet of a spead2 sender's heap after the first).
        magic_version, id_width, address_width, n, p3 = _HEADER_P3.unpack_from(data, offset)
        if magic_version == _MAGIC_VERSION and n == 4 and id_width + address_width == 8:
            keys = _FAST_KEYS[address_width]
            if keys[5] <= p3 < keys[6]:
                return 40 + (p3 & keys[1])
    elif available < 8:
        return None
    magic_version, id_width, address_width, n = _HEADER.unpack_from(data, offset)
    if magic_version != _MAGIC_VERSION:
        raise PacketError("magic or version did not match")
    if id_width + address_width != 8:
        raise PacketError("flavour is not SPEAD-64-*")
    keys = _KEYS[address_width]
    if keys is None:
        raise PacketError("flavour is invalid")
    payload_start = 8 + 8 * n
    if available < payload_start:
        return None
    pointers = (_POINTER_STRUCTS[n] if n <= 260 else struct.Struct(f">{n}Q")).unpack_from(
        data, offset + 8
    )
    # The last PAYLOAD_LENGTH wins; it is normally the fourth pointer.
    lo = keys.k_plen << keys.hab
    hi = lo + (1 << keys.hab)
    plen = -1
    for word in reversed(pointers):
        if lo <= word < hi:
            plen = word & keys.mask
            break
    if plen < 0:
        raise PacketError("packet does not have required items")
    return payload_start + plen
