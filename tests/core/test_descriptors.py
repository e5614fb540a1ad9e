"""Descriptor codec: encoding rules, round trips, and decoding of odd or hostile nested packets.

The decoding expectations for odd packets were observed on spead2 4.5.1 by
feeding it hand-made descriptor values.
"""

from __future__ import annotations

import logging
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spead2._log
from spead2.protocols.descriptors import decode_descriptor, decode_descriptors, encode_descriptor
from spead2.protocols.flavour import Flavour
from spead2.protocols.raw_descriptor import RawDescriptor
from tests.helpers.packets import addr, imm, raw_descriptor, raw_packet

ALL_BITS = [8, 16, 24, 32, 40, 48, 56]


def ptr(immediate: bool, item_id: int, value: int, bits: int = 40) -> int:
    return (imm if immediate else addr)(item_id, value, bits)


def nested(
    fields: list[tuple[int, bytes]],
    id: int | None = 0x1234,
    bits: int = 40,
    extra: tuple[int, ...] = (),
    heap_length: int | None = None,
    payload_length: int | None = None,
    cnt: int = 1,
    skip: tuple[int, ...] = (),
) -> bytes:
    """A nested descriptor packet with the given addressed fields, like spead2 builds them."""
    body = b""
    pointers = []
    for item_id, value in fields:
        pointers.append(ptr(False, item_id, len(body), bits))
        body += value
    size = len(body)
    base = []
    if 1 not in skip:
        base.append(ptr(True, 1, cnt, bits))
    if 2 not in skip:
        base.append(ptr(True, 2, size if heap_length is None else heap_length, bits))
    if 3 not in skip:
        base.append(ptr(True, 3, 0, bits))
    if 4 not in skip:
        base.append(ptr(True, 4, size if payload_length is None else payload_length, bits))
    if id is not None:
        base.append(ptr(True, 0x14, id, bits))
    return raw_packet(base + list(extra) + pointers, body, bits)


def fmt(code: str, bits: int, width: int = 3) -> bytes:
    return code.encode("latin-1") + bits.to_bytes(width)


def dim(flag: int, size: int, width: int = 5) -> bytes:
    return bytes([flag]) + size.to_bytes(width)


STANDARD = [(0x10, b"nm"), (0x11, b"dd"), (0x13, fmt("u", 8)), (0x12, dim(0, 3) + dim(1, 0))]


def fields(raw: RawDescriptor | None) -> tuple | None:
    if raw is None:
        return None
    return (raw.id, raw.name, raw.description, raw.format, raw.shape, raw.numpy_header)


# ---------------------------------------------------------------------------
# Encoding


def test_encode_layout_without_header() -> None:
    raw = raw_descriptor(0x1234, b"ab", b"cde", [("u", 8)], [2])
    data = encode_descriptor(raw, Flavour())
    assert data[:8] == bytes.fromhex("5304030500000009")
    pointers = struct.unpack(">9Q", data[8:80])
    assert pointers == (
        ptr(True, 1, 1),
        ptr(True, 2, 15),
        ptr(True, 3, 0),
        ptr(True, 4, 15),
        ptr(True, 0x14, 0x1234),
        ptr(False, 0x10, 0),
        ptr(False, 0x11, 2),
        ptr(False, 0x13, 5),
        ptr(False, 0x12, 9),
    )
    assert data[80:] == b"abcde" + fmt("u", 8) + dim(0, 2)


def test_encode_empty_descriptor_has_equal_addresses() -> None:
    data = encode_descriptor(raw_descriptor(7), Flavour())
    pointers = struct.unpack(">9Q", data[8:])
    assert [p & 0xFFFFFFFFFF for p in pointers[5:]] == [0, 0, 0, 0]
    assert len(data) == 80


@pytest.mark.parametrize("bits", ALL_BITS)
def test_encode_widths_follow_flavour(bits: int) -> None:
    raw = raw_descriptor(3, format=[("i", 16)], shape=[4, None])
    data = encode_descriptor(raw, Flavour(4, 64, bits, 0))
    body = data[8 + 8 * 9 :]
    assert body == fmt("i", 16, (64 - bits) // 8) + dim(0, 4, bits // 8) + dim(1, 0, bits // 8)
    # Bug-compat widths: 3-byte format lengths and 8-byte shape entries whatever the flavour.
    data = encode_descriptor(raw, Flavour(4, 64, bits, 1))
    assert data[8 + 8 * 9 :] == fmt("i", 16, 3) + dim(0, 4, 7) + dim(1, 0, 7)


def test_encode_shape_bit_1_and_negative_dimension() -> None:
    raw = raw_descriptor(3, shape=[None, -1, 2])
    data = encode_descriptor(raw, Flavour(4, 64, 40, 2))
    assert data[80:] == dim(2, 0) + dim(2, 0) + dim(0, 2)


def test_encode_latin1_code() -> None:
    data = encode_descriptor(raw_descriptor(3, format=[("\xe9", 8)]), Flavour())
    assert data[80:] == bytes.fromhex("e9000008")


@pytest.mark.parametrize(
    ("flavour", "raw", "message"),
    [
        (Flavour(4, 64, 8, 0), raw_descriptor(0x100), "Item ID out of range"),
        (Flavour(), raw_descriptor(-1), "Item ID out of range"),
        (Flavour(4, 64, 8, 0), raw_descriptor(1, shape=[300]), "shape dimension 300 out of range"),
        (Flavour(4, 64, 56, 0), raw_descriptor(1, format=[("u", 300)]), r"format field \('u', 300\)"),
        (Flavour(), raw_descriptor(1, format=[("u", 1 << 24)]), "format field"),
        (Flavour(), raw_descriptor(1, format=[("u", -1)]), "format field"),
        (Flavour(), raw_descriptor(1, format=[("uu", 8)]), "multi-character"),
        (Flavour(), raw_descriptor(1, format=[("", 8)]), "empty string"),
        (Flavour(), raw_descriptor(1, format=[("€", 8)]), "does not fit in one byte"),
        (Flavour(4, 64, 8, 0), raw_descriptor(1, description=b"x" * 300), "descriptor too large"),
    ],
)
def test_encode_refuses_what_does_not_fit(
    flavour: Flavour, raw: RawDescriptor, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_descriptor(raw, flavour)


def test_encode_limits_that_fit() -> None:
    assert encode_descriptor(raw_descriptor(0xFF, shape=[255]), Flavour(4, 64, 8, 0))
    assert encode_descriptor(raw_descriptor(1, description=b"x" * 250), Flavour(4, 64, 8, 0))
    assert encode_descriptor(raw_descriptor(1, format=[("u", (1 << 24) - 1)]), Flavour())


# ---------------------------------------------------------------------------
# Round trips


raw_descriptors = st.builds(
    raw_descriptor,
    id=st.integers(0, 255),
    name=st.binary(max_size=20),
    description=st.binary(max_size=40),
    format=st.lists(st.tuples(st.characters(max_codepoint=255), st.integers(0, 255)), max_size=4),
    shape=st.lists(st.one_of(st.none(), st.integers(0, 255)), max_size=4),
    numpy_header=st.one_of(st.just(b""), st.binary(min_size=1, max_size=60)),
)


@settings(max_examples=150, deadline=None)
@given(raw=raw_descriptors, bits=st.sampled_from(ALL_BITS), bug_compat=st.integers(0, 7))
def test_round_trip(raw: RawDescriptor, bits: int, bug_compat: int) -> None:
    encoded = encode_descriptor(raw, Flavour(4, 64, bits, bug_compat))
    decoded = decode_descriptor(encoded, bug_compat)
    assert decoded is not None
    assert (decoded.id, decoded.name, decoded.description, decoded.numpy_header) == (
        raw.id,
        raw.name,
        raw.description,
        raw.numpy_header,
    )
    if raw.numpy_header:
        assert (decoded.format, decoded.shape) == ([], [])
    else:
        assert decoded.format == raw.format
        assert decoded.shape == raw.shape


# ---------------------------------------------------------------------------
# Decoding: behaviour observed on spead2 4.5.1


def test_decode_standard() -> None:
    assert fields(decode_descriptor(nested(STANDARD), 0)) == (
        0x1234,
        b"nm",
        b"dd",
        [("u", 8)],
        [3, None],
        b"",
    )


def test_decode_no_id_logs(caplog: pytest.LogCaptureFixture, fresh_log_limits: None) -> None:
    with caplog.at_level(logging.INFO, logger="spead2"):
        assert decode_descriptor(nested(STANDARD, id=None), 0, spead2._log.log_limited) is None
    assert "incomplete descriptor (no ID)" in caplog.text


def test_decode_addressed_id_is_ignored(
    caplog: pytest.LogCaptureFixture, fresh_log_limits: None
) -> None:
    value = nested([(0x10, b"nm"), (0x14, b"\0\0\0\0\x12")], id=None)
    with caplog.at_level(logging.INFO, logger="spead2"):
        assert decode_descriptor(value, 0, spead2._log.log_limited) is None
    assert "not an immediate" in caplog.text


@pytest.mark.parametrize("missing", [1, 3, 4])
def test_decode_missing_required_items(missing: int) -> None:
    assert decode_descriptor(nested(STANDARD, skip=(missing,)), 0) is None


def test_decode_unsized_is_accepted() -> None:
    assert fields(decode_descriptor(nested(STANDARD, skip=(2,)), 0))[:2] == (0x1234, b"nm")


@pytest.mark.parametrize(("heap_length", "payload_length"), [(50, None), (21, None), (None, 100)])
def test_decode_incomplete_or_overflowing_heap(heap_length, payload_length) -> None:
    value = nested(STANDARD, heap_length=heap_length, payload_length=payload_length)
    assert decode_descriptor(value, 0) is None


def test_decode_shorter_payload_truncates_fields() -> None:
    # HEAP_LENGTH = PAYLOAD_LENGTH = 10 of a 20-byte body: the shape is cut to a partial entry.
    value = nested(STANDARD, heap_length=10, payload_length=10)
    assert fields(decode_descriptor(value, 0)) == (0x1234, b"nm", b"dd", [("u", 8)], [], b"")


def test_decode_trailing_partial_entries_ignored() -> None:
    value = nested([(0x13, fmt("u", 8) + b"i\0"), (0x12, dim(0, 3) + dim(2, 7) + b"\1\2")])
    raw = decode_descriptor(value, 0)
    assert raw is not None
    assert (raw.format, raw.shape) == ([("u", 8)], [3, 7])


def test_decode_variable_flag_bits() -> None:
    value = nested([(0x12, dim(2, 7) + dim(1, 9) + dim(3, 4))])
    assert decode_descriptor(value, 0).shape == [7, None, None]
    assert decode_descriptor(value, 2).shape == [None, 9, None]


def test_decode_immediate_fields() -> None:
    value = nested([(0x13, fmt("u", 8))], extra=(ptr(True, 0x10, 0x41424344),))
    assert decode_descriptor(value, 0).name == b"\x00ABCD"
    value = nested([], extra=(ptr(True, 0x13, 0x7500000008),))
    assert decode_descriptor(value, 0).format == [("u", 0)]


def test_decode_numpy_header_wins() -> None:
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}"
    raw = decode_descriptor(nested(STANDARD + [(0x15, header)]), 0)
    assert fields(raw) == (0x1234, b"nm", b"dd", [], [], header)


def test_decode_uses_nested_flavour() -> None:
    value = nested([(0x10, b"nm"), (0x13, b"u\0\0\x08"), (0x12, bytes(6) + b"\3")], bits=48)
    assert fields(decode_descriptor(value, 0)) == (0x1234, b"nm", b"", [("u", 0)], [3], b"")
    value = nested([(0x10, b"q"), (0x12, b"\0\5\1\0")], bits=8, id=0x33)
    assert fields(decode_descriptor(value, 0)) == (0x33, b"q", b"", [], [5, None], b"")


@pytest.mark.parametrize("bits", [40, 48])
def test_decode_bug_compat_widths(bits: int) -> None:
    value = nested([(0x13, fmt("u", 8)), (0x12, dim(0, 3, 7) + dim(1, 0, 7))], bits=bits)
    raw = decode_descriptor(value, 1)
    assert (raw.format, raw.shape) == ([("u", 8)], [3, None])


def test_decode_latin1_codes() -> None:
    value = nested([(0x13, b"\xff\0\0\x08" + b"\x00\0\0\x10" + b"\x80\0\0\x01")])
    assert decode_descriptor(value, 0).format == [("\xff", 8), ("\x00", 16), ("\x80", 1)]


def test_decode_last_of_duplicates_wins() -> None:
    assert decode_descriptor(nested([(0x10, b"nm"), (0x10, b"xy")]), 0).name == b"xy"
    value = raw_packet(
        [
            ptr(True, 1, 7),
            ptr(True, 2, 0),
            ptr(True, 3, 0),
            ptr(True, 4, 0),
            ptr(True, 0x14, 9),
            ptr(True, 0x14, 10),
        ],
        b"",
    )
    assert decode_descriptor(value, 0).id == 10


def test_decode_addresses() -> None:
    # Lengths run to the next address in address order, whatever the pointer order.
    value = raw_packet(
        [
            ptr(True, 1, 1),
            ptr(True, 2, 4),
            ptr(True, 3, 0),
            ptr(True, 4, 4),
            ptr(True, 0x14, 9),
            ptr(False, 0x10, 2),
            ptr(False, 0x11, 0),
        ],
        b"abcd",
    )
    assert fields(decode_descriptor(value, 0))[:3] == (9, b"cd", b"ab")
    # An address beyond the heap makes the heap unusable.
    value = raw_packet(
        [
            ptr(True, 1, 1),
            ptr(True, 2, 4),
            ptr(True, 3, 0),
            ptr(True, 4, 4),
            ptr(True, 0x14, 9),
            ptr(False, 0x10, 0),
            ptr(False, 0x11, 10),
        ],
        b"abcd",
    )
    assert decode_descriptor(value, 0) is None
    # A NULL pointer bounds the field before it.
    assert decode_descriptor(nested([(0x10, b"abcd"), (0x00, b"xx")]), 0).name == b"abcd"


def test_decode_reserved_bytes_ignored() -> None:
    value = bytearray(nested(STANDARD))
    value[4:6] = b"\xff\xff"
    assert decode_descriptor(bytes(value), 0).id == 0x1234


def test_decode_multi_packet_heap() -> None:
    full = nested(STANDARD)
    body = full[8 + 8 * 9 :]
    first = nested(STANDARD, heap_length=20, payload_length=10)[: 8 + 8 * 9 + 10]
    second = raw_packet(
        [ptr(True, 1, 1), ptr(True, 2, 20), ptr(True, 3, 10), ptr(True, 4, 10)], body[10:]
    )
    assert fields(decode_descriptor(first + second, 0)) == fields(decode_descriptor(full, 0))


def test_decode_several_heaps_in_one_value() -> None:
    value = nested(STANDARD) + nested([(0x10, b"zz")], id=0x55, cnt=2)
    found = decode_descriptors(value, 0)
    assert [(raw.id, raw.name) for raw in found] == [(0x1234, b"nm"), (0x55, b"zz")]
    assert decode_descriptor(value, 0).id == 0x1234
    # Trailing junk is ignored, after what could be parsed.
    assert [raw.id for raw in decode_descriptors(nested(STANDARD) + b"junkjunk", 0)] == [0x1234]


def test_decode_same_cnt_restart_is_out_of_order() -> None:
    first = nested([(0x10, b"ab")], id=1, skip=(2,))
    second = nested([(0x10, b"cd")], id=2, skip=(2,))
    assert [raw.id for raw in decode_descriptors(first + second, 0)] == [1]


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\x53\x04\x03",
        b"\x54" + nested(STANDARD)[1:],
        b"\x53\x05" + nested(STANDARD)[2:],
        b"\x53\x04\x04\x05" + nested(STANDARD)[4:],
        b"\x53\x04\x00\x08" + nested(STANDARD)[4:],
        nested(STANDARD)[:6] + b"\x00\xc8" + nested(STANDARD)[8:],
        nested(STANDARD)[:-1],
    ],
)
def test_decode_garbage_is_none(value: bytes) -> None:
    assert decode_descriptor(value, 0) is None
    assert decode_descriptors(value, 7) == []


def test_decode_accepts_any_buffer() -> None:
    value = nested(STANDARD)
    for buffer in (bytearray(value), memoryview(value), memoryview(b"xx" + value)[2:]):
        assert decode_descriptor(buffer, 0).id == 0x1234


# ---------------------------------------------------------------------------
# Hostile input: never raises, whatever the bytes.


@settings(max_examples=200, deadline=None)
@given(value=st.binary(max_size=200), bug_compat=st.integers(0, 7))
def test_decode_random_bytes_never_raises(value: bytes, bug_compat: int) -> None:
    result = decode_descriptors(value, bug_compat)
    assert isinstance(result, list)
    assert decode_descriptor(value, bug_compat) is (result[0] if result else None)


@st.composite
def mutated_descriptors(draw: st.DrawFn) -> bytes:
    raw = draw(raw_descriptors)
    bits = draw(st.sampled_from(ALL_BITS))
    data = bytearray(encode_descriptor(raw, Flavour(4, 64, bits, draw(st.integers(0, 7)))))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=16))


@settings(max_examples=200, deadline=None)
@given(value=mutated_descriptors(), bug_compat=st.integers(0, 7))
def test_decode_mutated_descriptors_never_raise(value: bytes, bug_compat: int) -> None:
    for raw in decode_descriptors(value, bug_compat):
        assert isinstance(raw.id, int)
        assert len(raw.shape) <= len(value) and len(raw.format) <= len(value)


def test_decode_huge_declared_lengths_allocate_nothing() -> None:
    # HEAP_LENGTH 2**40-1 with a tiny payload: incomplete, no giant buffer.
    value = nested(STANDARD, heap_length=(1 << 40) - 1)
    assert decode_descriptor(value, 0) is None
    # 65535 pointers declared in 80 bytes: rejected before unpacking.
    value = bytes([0x53, 4, 3, 5, 0, 0, 0xFF, 0xFF]) + bytes(72)
    assert decode_descriptor(value, 0) is None
