"""Item descriptors on the wire: ``RawDescriptor`` ⇄ nested SPEAD packet (with the PySPEAD bug-compat variants).

A descriptor travels as the value of a ``DESCRIPTOR_ID`` item: a complete
SPEAD packet of its own ("nested packet"), whose items are the descriptor's
fields. Encoding follows exactly what spead2 4.5.1 sends; decoding accepts
whatever a spead2 receiver accepts and never raises, whatever the bytes.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Buffer

from .constants import (
    BUG_COMPAT_DESCRIPTOR_WIDTHS,
    BUG_COMPAT_SHAPE_BIT_1,
    DESCRIPTOR_DESCRIPTION_ID,
    DESCRIPTOR_DTYPE_ID,
    DESCRIPTOR_FORMAT_ID,
    DESCRIPTOR_ID_ID,
    DESCRIPTOR_NAME_ID,
    DESCRIPTOR_SHAPE_ID,
    HEAP_CNT_ID,
    HEAP_LENGTH_ID,
    IMMEDIATE,
    MAGIC,
    PAYLOAD_LENGTH_ID,
    PAYLOAD_OFFSET_ID,
    VERSION,
)
from .flavour import Flavour
from .raw_descriptor import RawDescriptor
from .report import Report, ignore

__all__ = ["decode_descriptor", "decode_descriptors", "encode_descriptor"]

_HEADER = struct.Struct(">BBBBHH")
_INFO = logging.INFO
#: A descriptor value may pack several nested heaps; like a spead2 receive
#: stream, keep at most this many partial ones alive at a time.
_MAX_LIVE_HEAPS = 4


# ---------------------------------------------------------------------------
# Encoding


def _field_widths(address_bits: int, bug_compat: int) -> tuple[int, int]:
    """Byte widths of a format entry's bit count and of a shape entry's size."""
    if bug_compat & BUG_COMPAT_DESCRIPTOR_WIDTHS:
        # PySPEAD 0.5.2 always used the SPEAD-64-40 format width and 8-byte shape entries.
        return 3, 7
    return (64 - address_bits) // 8, address_bits // 8


def _encode_format(fmt: list[tuple[str, int]], width: int) -> bytes:
    limit = 1 << (8 * width)
    out = bytearray()
    for code, bits in fmt:
        if len(code) > 1:
            raise ValueError(f"Expected a character, but multi-character string found: {code!r}")
        if not code:
            raise ValueError("Cannot convert empty string to a character")
        if ord(code) > 0xFF:
            raise ValueError(f"format code {code!r} does not fit in one byte")
        if not 0 <= bits < limit:
            raise ValueError(
                f"format field ({code!r}, {bits}) out of range: bits must fit in {width} bytes"
            )
        out.append(ord(code))
        out += bits.to_bytes(width)
    return bytes(out)


def _encode_shape(shape: list[int | None], width: int, variable_flag: int) -> bytes:
    limit = 1 << (8 * width)
    zeros = bytes(width)
    out = bytearray()
    for dim in shape:
        # Negative sizes mean "variable", as in the reference's RawDescriptor.
        if dim is None or dim < 0:
            out.append(variable_flag)
            out += zeros
        elif dim >= limit:
            raise ValueError(f"shape dimension {dim} out of range: must fit in {width} bytes")
        else:
            out.append(0)
            out += dim.to_bytes(width)
    return bytes(out)


def encode_descriptor(raw: RawDescriptor, flavour: Flavour) -> bytes:
    """The nested packet carrying ``raw`` in ``flavour`` (honouring ``flavour.bug_compat``).

    Pointers: HEAP_CNT=1, HEAP_LENGTH, PAYLOAD_OFFSET=0, PAYLOAD_LENGTH,
    DESCRIPTOR_ID_ID, then NAME, DESCRIPTION, FORMAT, SHAPE and (only with a
    numpy header) DTYPE, addressed in that order into one unsplit body.

    Raises ``ValueError`` where the reference would silently truncate: an ID,
    format width, shape size or body length that the flavour cannot represent.
    """
    bits = flavour.heap_address_bits
    bug_compat = flavour.bug_compat
    format_width, shape_width = _field_widths(bits, bug_compat)
    variable_flag = 2 if bug_compat & BUG_COMPAT_SHAPE_BIT_1 else 1
    limit = 1 << bits
    if not 0 <= raw.id < limit:
        raise ValueError(
            f"Item ID out of range: descriptor ID {raw.id:#x} does not fit in the "
            f"{bits}-bit value field of SPEAD-64-{bits}"
        )
    fields = [
        (DESCRIPTOR_NAME_ID, bytes(raw.name)),
        (DESCRIPTOR_DESCRIPTION_ID, bytes(raw.description)),
        (DESCRIPTOR_FORMAT_ID, _encode_format(raw.format, format_width)),
        (DESCRIPTOR_SHAPE_ID, _encode_shape(raw.shape, shape_width, variable_flag)),
    ]
    if raw.numpy_header:
        fields.append((DESCRIPTOR_DTYPE_ID, bytes(raw.numpy_header)))
    body_length = sum(len(value) for _, value in fields)
    if body_length >= limit:
        raise ValueError(
            f"descriptor too large for flavour: {body_length} bytes do not fit in "
            f"the {bits}-bit address field of SPEAD-64-{bits}"
        )
    pointers = [
        IMMEDIATE | (HEAP_CNT_ID << bits) | 1,
        IMMEDIATE | (HEAP_LENGTH_ID << bits) | body_length,
        IMMEDIATE | (PAYLOAD_OFFSET_ID << bits),
        IMMEDIATE | (PAYLOAD_LENGTH_ID << bits) | body_length,
        IMMEDIATE | (DESCRIPTOR_ID_ID << bits) | raw.id,
    ]
    address = 0
    for item_id, value in fields:
        pointers.append((item_id << bits) | address)
        address += len(value)
    header = _HEADER.pack(MAGIC, VERSION, (64 - bits) // 8, bits // 8, 0, len(pointers))
    return b"".join(
        [header, struct.pack(f">{len(pointers)}Q", *pointers), *(value for _, value in fields)]
    )


# ---------------------------------------------------------------------------
# Decoding


class _NestedHeap:
    """A heap being assembled from the nested packets of one descriptor value."""

    __slots__ = ("address_bits", "heap_length", "pointers", "chunks", "received")

    def __init__(self, address_bits: int, heap_length: int) -> None:
        self.address_bits = address_bits
        self.heap_length = heap_length  # -1: unsized
        self.pointers: list[int] = []
        self.chunks: list[memoryview] = []
        self.received = 0


def _reject(report: Report, reason: str) -> None:
    report(_INFO, "descriptor.malformed", "ignoring malformed descriptor: %s", reason)


def _packets_to_heaps(data: memoryview, report: Report) -> list[_NestedHeap]:
    """Frame ``data`` as back-to-back packets and assemble them into complete heaps.

    Mirrors a spead2 receiver reading a buffer: framing stops at the first
    packet that cannot be parsed; packets of one heap must arrive in order;
    unsized heaps complete when the data ends (or they are evicted).
    """
    size = len(data)
    pos = 0
    live: dict[int, _NestedHeap] = {}
    done: list[_NestedHeap] = []
    while pos < size:
        if size - pos < 8:
            _reject(report, f"packet too small ({size - pos} bytes)")
            break
        magic, version, id_bytes, address_bytes, _, n_items = _HEADER.unpack_from(data, pos)
        if magic != MAGIC or version != VERSION:
            _reject(report, "magic or version did not match")
            break
        if id_bytes + address_bytes != 8 or address_bytes in (0, 8):
            _reject(report, "flavour is not a valid SPEAD-64-*")
            break
        payload_start = pos + 8 + 8 * n_items
        if payload_start > size:
            _reject(report, "the items overflow the packet")
            break
        bits = 8 * address_bytes
        value_mask = (1 << bits) - 1
        cnt = heap_length = offset = length = -1
        pointers = []
        for pointer in struct.unpack_from(f">{n_items}Q", data, pos + 8):
            item_id = (pointer & ~IMMEDIATE) >> bits
            if HEAP_CNT_ID <= item_id <= PAYLOAD_LENGTH_ID:
                if pointer & IMMEDIATE:
                    value = pointer & value_mask
                    if item_id == HEAP_CNT_ID:
                        cnt = value
                    elif item_id == HEAP_LENGTH_ID:
                        heap_length = value
                    elif item_id == PAYLOAD_OFFSET_ID:
                        offset = value
                    else:
                        length = value
            else:
                pointers.append(pointer)
        if cnt < 0 or offset < 0 or length < 0:
            _reject(report, "it does not have required items")
            break
        end = payload_start + length
        if end > size:
            _reject(report, "payload length overflows packet size")
            break
        pos = end
        if heap_length >= 0 and offset + length > heap_length:
            _reject(report, "payload would overflow given heap length")
            continue
        heap = live.get(cnt)
        if heap is None:
            if offset != 0:
                _reject(report, "packet is out of order in the heap")
                continue
            if len(live) >= _MAX_LIVE_HEAPS:
                oldest = next(iter(live))
                evicted = live.pop(oldest)
                if evicted.heap_length < 0:
                    done.append(evicted)
            heap = live[cnt] = _NestedHeap(bits, heap_length)
        elif (
            offset != heap.received or heap.address_bits != bits or heap.heap_length != heap_length
        ):
            _reject(report, "packet is out of order in the heap")
            continue
        heap.pointers.extend(pointers)
        if length:
            heap.chunks.append(data[payload_start:end])
            heap.received += length
        if heap.received == heap.heap_length:
            done.append(live.pop(cnt))
    # End of data: unsized heaps are complete (they are contiguous by construction).
    done.extend(heap for heap in live.values() if heap.heap_length < 0)
    return done


def _heap_fields(heap: _NestedHeap) -> list[tuple[int, bool, int, bytes]] | None:
    """(id, immediate, value-or-address, bytes) of the heap's items in receive order.

    That order (addressed by address, then immediates by value) decides which
    of several pointers for one field wins: the last. ``None`` if an address
    lies beyond the payload (the heap is unusable, as for a receiver).
    """
    bits = heap.address_bits
    mask = (1 << bits) - 1
    payload = b"".join(heap.chunks)
    end = len(payload)
    addressed: list[tuple[int, int]] = []
    immediates: list[tuple[int, int]] = []
    for pointer in dict.fromkeys(heap.pointers):
        item_id = (pointer & ~IMMEDIATE) >> bits
        if pointer & IMMEDIATE:
            immediates.append((pointer & mask, item_id))
        else:
            address = pointer & mask
            if address > end:
                return None
            addressed.append((address, item_id))
    addressed.sort(key=lambda entry: entry[0])
    fields: list[tuple[int, bool, int, bytes]] = []
    for i, (address, item_id) in enumerate(addressed):
        following = addressed[i + 1][0] if i + 1 < len(addressed) else end
        if following > address:
            fields.append((item_id, False, address, payload[address:following]))
    immediates.sort(key=lambda entry: entry[0])
    width = bits // 8
    fields.extend((item_id, True, value, value.to_bytes(width)) for value, item_id in immediates)
    return fields


def _decode_heap(heap: _NestedHeap, bug_compat: int, report: Report) -> RawDescriptor | None:
    fields = _heap_fields(heap)
    if fields is None:
        _reject(report, "an item address lies beyond the heap payload")
        return None
    raw = RawDescriptor()
    descriptor_id: int | None = None
    format_bytes = shape_bytes = b""
    for item_id, immediate, value, content in fields:
        if item_id == DESCRIPTOR_ID_ID:
            if immediate:
                descriptor_id = value
            else:
                report(
                    _INFO, "descriptor.id", "Ignoring descriptor ID that is not an immediate"
                )
        elif item_id == DESCRIPTOR_NAME_ID:
            raw.name = content
        elif item_id == DESCRIPTOR_DESCRIPTION_ID:
            raw.description = content
        elif item_id == DESCRIPTOR_FORMAT_ID:
            format_bytes = content
        elif item_id == DESCRIPTOR_SHAPE_ID:
            shape_bytes = content
        elif item_id == DESCRIPTOR_DTYPE_ID:
            raw.numpy_header = content
    if descriptor_id is None:
        report(_INFO, "descriptor.noid", "incomplete descriptor (no ID)")
        return None
    raw.id = descriptor_id
    if raw.numpy_header:
        # The numpy header is authoritative; shape and format stay empty.
        return raw
    format_width, shape_width = _field_widths(heap.address_bits, bug_compat)
    step = 1 + format_width
    raw.format = [
        (chr(format_bytes[i]), int.from_bytes(format_bytes[i + 1 : i + step]))
        for i in range(0, len(format_bytes) - step + 1, step)
    ]
    variable_flag = 2 if bug_compat & BUG_COMPAT_SHAPE_BIT_1 else 1
    step = 1 + shape_width
    raw.shape = [
        None if shape_bytes[i] & variable_flag else int.from_bytes(shape_bytes[i + 1 : i + step])
        for i in range(0, len(shape_bytes) - step + 1, step)
    ]
    return raw


def decode_descriptors(value: Buffer, bug_compat: int, report: Report = ignore) -> list[RawDescriptor]:
    """Every descriptor carried by one ``DESCRIPTOR_ID`` value.

    The value is read like a spead2 receiver reads a buffer: back-to-back
    packets, each with its own flavour, assembled into heaps; each complete
    heap with an immediate ``DESCRIPTOR_ID_ID`` is one descriptor. Anything
    unusable is skipped with an INFO ``report`` (see :mod:`.report`). Never raises; every
    allocation is bounded by the size of ``value``.
    """
    try:
        data = memoryview(value).cast("B")
    except (TypeError, ValueError):
        _reject(report, "value is not a contiguous buffer")
        return []
    result = []
    for heap in _packets_to_heaps(data, report):
        raw = _decode_heap(heap, bug_compat, report)
        if raw is not None:
            result.append(raw)
    return result


def decode_descriptor(value: Buffer, bug_compat: int, report: Report = ignore) -> RawDescriptor | None:
    """The first descriptor carried by ``value``, or ``None`` if there is none.

    See :func:`decode_descriptors`; a value produced by any known sender
    carries exactly one.
    """
    found = decode_descriptors(value, bug_compat, report)
    return found[0] if found else None
