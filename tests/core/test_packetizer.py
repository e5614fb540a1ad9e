"""HeapPacketizer: sizes, padding, repeat_pointers, errors, zero-copy, and packet invariants."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spead2.protocols.flavour import Flavour
from spead2.protocols.heaps import Heap as ReceivedHeap
from spead2.protocols.packetizer import HeapEntry, HeapPacketizer

IMM = 1 << 63


@dataclass
class Source:
    """A minimal PacketSource."""

    flavour: Flavour = field(default_factory=Flavour)
    repeat_pointers: bool = False
    entries: list[HeapEntry] = field(default_factory=list)

    def addressed(self, item_id: int, value: bytes) -> Source:
        self.entries.append((item_id, False, memoryview(value)))
        return self

    def immediate(self, item_id: int, value: bytes) -> Source:
        self.entries.append((item_id, True, memoryview(value)))
        return self


def packets_of(source: Source, cnt: int = 1, mps: int = 1472) -> list[bytes]:
    return [b"".join(p) for p in HeapPacketizer(source, cnt, mps)]


def parse(packet: bytes, bits: int = 40) -> tuple[list[int], bytes]:
    """(pointers, payload) of one packet, checking the fixed layout on the way."""
    assert packet[:6] == bytes([0x53, 4, (64 - bits) // 8, bits // 8, 0, 0])
    n = int.from_bytes(packet[6:8])
    pointers = list(struct.unpack(f">{n}Q", packet[8 : 8 + 8 * n]))
    return pointers, packet[8 + 8 * n :]


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("mps", [-8, 0, 48, 55])
def test_packet_size_too_small(mps: int) -> None:
    with pytest.raises(ValueError, match="^packet size is too small"):
        HeapPacketizer(Source(), 1, mps)


def test_smallest_packet_size() -> None:
    assert packets_of(Source(), 1, 56) == packets_of(Source(), 1, 63)
    assert len(packets_of(Source(), 1, 56)[0]) == 49


def test_repeat_pointers_too_small() -> None:
    source = Source(repeat_pointers=True).addressed(0x1000, bytes(6)).immediate(0x1001, b"\1")
    # mps 64 → at most 2 heap pointers per packet; repeating 2 needs room for 3.
    with pytest.raises(ValueError, match="^packet size is too small to repeat item pointers"):
        HeapPacketizer(source, 1, 64)
    assert len(packets_of(source, 1, 72)) == 1


def test_heap_too_large_for_flavour() -> None:
    source = Source(Flavour(4, 64, 8, 0)).addressed(0x10, bytes(256))
    with pytest.raises(ValueError, match="heap too large for flavour"):
        HeapPacketizer(source, 1, 1472)
    source = Source(Flavour(4, 64, 8, 0)).addressed(0x10, bytes(255))
    assert sum(len(parse(p, 8)[1]) for p in packets_of(source, 1, 1472)) == 255


def test_oversized_immediate_refused() -> None:
    source = Source().immediate(0x1000, bytes(6))  # even a value of 0
    with pytest.raises(ValueError, match="does not fit"):
        HeapPacketizer(source, 1, 1472)


# ---------------------------------------------------------------------------
# Layout


def test_immediate_right_aligned_and_zero_length() -> None:
    source = Source().immediate(0x1000, b"\1\2").immediate(0x1001, b"")
    (packet,) = packets_of(source)
    pointers, payload = parse(packet)
    assert pointers[4:] == [IMM | 0x1000 << 40 | 0x0102, IMM | 0x1001 << 40, 0]
    assert payload == b"\0"


def test_immediates_read_when_packetizing() -> None:
    value = bytearray(b"\1\2")
    source = Source().immediate(0x1000, value)
    before = packets_of(source)
    value[0] = 0xFF
    after = packets_of(source)
    assert parse(before[0])[0][4] & 0xFFFF == 0x0102
    assert parse(after[0])[0][4] & 0xFFFF == 0xFF02


def test_payload_is_zero_copy_views() -> None:
    array = np.arange(3000, dtype=np.uint8)
    source = Source().addressed(0x1000, array.data.cast("B"))
    packetizer = HeapPacketizer(source, 1, 1472)
    first = packetizer.next_packet()
    assert first is not None
    assert isinstance(first[0], bytes) and len(first[0]) == 48
    assert isinstance(first[1], memoryview)
    array[0] = 99
    assert first[1][0] == 99  # the packet refers to the item's memory


def test_padding_real_bytes_first() -> None:
    """The case where the reference right-aligns real bytes (API.md §8.1): we don't."""
    source = Source()
    for i in range(5):
        source.immediate(0x1000 + i, b"\1\2")
    source.addressed(0x1010, bytes(range(0xA0, 0xA6)))
    packets = packets_of(source, 1, 64)
    assert [len(p) for p in packets] == [64, 64, 64, 49]
    parsed = [parse(p) for p in packets]
    # P = 6 heap pointers, M = 2 → padded to 8 * 3 + 1 = 25 bytes, NULL at 6.
    assert all(pointers[1] == IMM | 2 << 40 | 25 for pointers, _ in parsed)
    assert parsed[3][0][4:] == [6]
    assert parsed[0][1] == bytes(range(0xA0, 0xA6)) + b"\0\0"
    assert b"".join(payload for _, payload in parsed) == bytes(range(0xA0, 0xA6)) + bytes(19)


def test_no_padding_when_enough_payload() -> None:
    source = Source().addressed(0x1000, bytes(range(9)))
    packets = packets_of(source, 1, 56)  # M = 1, P = 1 → needs 9 bytes
    assert [parse(p)[0][4:] for p in packets] == [[0x1000 << 40], []]
    assert b"".join(parse(p)[1] for p in packets) == bytes(range(9))


def test_repeat_pointers_layout() -> None:
    source = (
        Source(repeat_pointers=True).addressed(0x1000, bytes(range(30))).immediate(0x1001, b"\7")
    )
    packets = packets_of(source, 9, 80)
    heap_pointers = [0x1000 << 40, IMM | 0x1001 << 40 | 7]
    offset = 0
    for packet in packets:
        pointers, payload = parse(packet)
        assert pointers[4:] == heap_pointers
        assert pointers[2] == IMM | 3 << 40 | offset
        offset += len(payload)
    assert [len(p) for p in packets] == [80, 62]  # 24 payload bytes per packet
    assert offset == 30


def test_repeat_pointers_empty_payload_gets_null() -> None:
    source = Source(repeat_pointers=True).immediate(0x1000, b"\1\2")
    (packet,) = packets_of(source, 1, 64)
    pointers, payload = parse(packet)
    assert pointers[4:] == [IMM | 0x1000 << 40 | 0x0102, 0]
    assert payload == b"\0"


def test_next_packet_and_iteration_agree() -> None:
    source = Source().addressed(0x1000, bytes(5000))
    packetizer = HeapPacketizer(source, 1, 1472)
    assert packetizer.heap_length == 5000
    collected = []
    while (packet := packetizer.next_packet()) is not None:
        collected.append(b"".join(packet))
    assert packetizer.next_packet() is None
    assert packetizer.packets_sent == len(collected) == 4
    assert collected == packets_of(source)


# ---------------------------------------------------------------------------
# Property: invariants of every packetization


@st.composite
def sources(draw: st.DrawFn) -> tuple[Source, bytes, list[tuple[int, bool, bytes]]]:
    bits = draw(st.sampled_from([16, 24, 32, 40, 48, 56]))
    source = Source(Flavour(4, 64, bits, 0), repeat_pointers=draw(st.booleans()))
    max_id = min((1 << (63 - bits)) - 1, 0xFFFF)
    items = []
    # Unique IDs: a receiver drops repeats of an identical pointer word.
    for item_id in draw(st.lists(st.integers(7, max_id), max_size=12, unique=True)):
        if draw(st.booleans()):
            value = draw(st.binary(max_size=bits // 8))
            source.immediate(item_id, value)
            items.append((item_id, True, value))
        else:
            value = draw(st.binary(max_size=draw(st.sampled_from([4, 40, 400, 3000]))))
            source.addressed(item_id, value)
            items.append((item_id, False, value))
    payload = b"".join(value for _, immediate, value in items if not immediate)
    return source, payload, items


@settings(max_examples=200, deadline=None)
@given(data=sources(), mps=st.integers(56, 2000), cnt=st.integers(0, 0xFFFF))
def test_packet_invariants(data, mps: int, cnt: int) -> None:
    source, payload, items = data
    bits = source.flavour.heap_address_bits
    mask = (1 << bits) - 1
    try:
        packetizer = HeapPacketizer(source, cnt, mps)
    except ValueError as exc:
        assert source.repeat_pointers and "repeat item pointers" in str(exc)
        assert len(items) + 1 > (mps // 8 * 8 - 48) // 8
        return
    mps8 = mps // 8 * 8
    heap_length = packetizer.heap_length
    assert heap_length >= max(len(payload), 1)
    offset = 0
    seen_pointers: list[int] = []
    assembled = b""
    for buffers in packetizer:
        packet = b"".join(buffers)
        assert len(packet) <= mps8
        pointers, body = parse(packet, bits)
        assert [p >> bits for p in pointers[:4]] == [(IMM >> bits) | i for i in (1, 2, 3, 4)]
        assert pointers[0] & mask == cnt
        assert pointers[1] & mask == heap_length
        assert pointers[2] & mask == offset
        assert pointers[3] & mask == len(body) >= 1
        offset += len(body)
        assembled += body
        if source.repeat_pointers:
            assert seen_pointers in ([], pointers[4:])
            seen_pointers = pointers[4:]
        else:
            seen_pointers.extend(pointers[4:])
    assert offset == heap_length
    # Real bytes first, then zero padding.
    assert assembled == payload + bytes(heap_length - len(payload))
    # Every heap pointer exactly once (non-repeat) / in every packet (repeat), in call order.
    expected = []
    address = 0
    for item_id, immediate, value in items:
        if immediate:
            expected.append(IMM | item_id << bits | int.from_bytes(value))
        else:
            expected.append(item_id << bits | address)
            address += len(value)
    if heap_length > len(payload):
        expected.append(len(payload))  # NULL pointer where the real data ends
    assert seen_pointers == expected
    # A receiver recovers every non-empty addressed value exactly.
    received = ReceivedHeap(cnt, source.flavour, seen_pointers, bytearray(assembled))
    got = [(r.id, bytes(r)) for r in received.get_items() if not r.is_immediate]
    want = [(i, v) for i, immediate, v in items if not immediate and v]
    assert sorted(got) == sorted(want)
