"""Fixed byte vectors: the worked examples of PROTOCOL.md §13 and §10, produced by real spead2 4.5.1."""

from __future__ import annotations

import pytest

from spead2.protocols.descriptors import decode_descriptor, encode_descriptor
from spead2.protocols.flavour import Flavour
from spead2.protocols.raw_descriptor import RawDescriptor
from spead2.send._heap import Heap, PacketGenerator
from tests.helpers.packets import raw_descriptor


def h(text: str) -> bytes:
    """Bytes from a hex dump that may contain spaces, newlines and ``|`` separators."""
    return bytes.fromhex(text.replace("|", " "))


class FakeItem:
    """The three things ``Heap.add_item`` uses of an item."""

    def __init__(self, id: int, value: bytes, immediate: bool = True) -> None:
        self.id = id
        self._value = value
        self._immediate = immediate

    def to_buffer(self) -> bytes:
        return self._value

    def allow_immediate(self) -> bool:
        return self._immediate


class FakeDescriptor:
    def __init__(self, raw: RawDescriptor) -> None:
        self.raw = raw

    def to_raw(self, flavour: Flavour) -> RawDescriptor:
        return self.raw


TIMESTAMP = raw_descriptor(0x1600, b"timestamp", b"Sample counter", [("u", 40)])
SAMPLES = raw_descriptor(
    0x1601,
    b"samples",
    b"Raw samples",
    shape=[3],
    numpy_header=b"{'descr': '>i2', 'fortran_order': False, 'shape': (3,)}",
)

# §13.2, the nested packet of the timestamp descriptor (107 bytes).
NESTED_13_2 = h("""
53 04 03 05 00 00 00 09
80 00 01 00 00 00 00 01
80 00 02 00 00 00 00 1b
80 00 03 00 00 00 00 00
80 00 04 00 00 00 00 1b
80 00 14 00 00 00 16 00
00 00 10 00 00 00 00 00
00 00 11 00 00 00 00 09
00 00 13 00 00 00 00 17
00 00 12 00 00 00 00 1b
74 69 6d 65 73 74 61 6d 70 53 61 6d 70 6c 65 20 63 6f 75 6e 74 65 72 75 00 00 28
""")

# §13.3, the nested packet of the samples descriptor (167 bytes).
NESTED_13_3 = h("""
53 04 03 05 00 00 00 0a
80 00 01 00 00 00 00 01
80 00 02 00 00 00 00 4f
80 00 03 00 00 00 00 00
80 00 04 00 00 00 00 4f
80 00 14 00 00 00 16 01
00 00 10 00 00 00 00 00
00 00 11 00 00 00 00 07
00 00 13 00 00 00 00 12
00 00 12 00 00 00 00 12
00 00 15 00 00 00 00 18
73 61 6d 70 6c 65 73 52 61 77 20 73 61 6d 70 6c 65 73 00 00 00 00 00 03
7b 27 64 65 73 63 72 27 3a 20 27 3e 69 32 27 2c 20 27 66 6f 72 74 72 61
6e 5f 6f 72 64 65 72 27 3a 20 46 61 6c 73 65 2c 20 27 73 68 61 70 65 27
3a 20 28 33 2c 29 7d
""")


def outer_descriptor_packet(cnt: int, nested: bytes) -> bytes:
    n = len(nested)
    return (
        h("53 04 03 05 00 00 00 05")
        + (0x8000010000000000 | cnt).to_bytes(8)
        + (0x8000020000000000 | n).to_bytes(8)
        + h("80 00 03 00 00 00 00 00")
        + (0x8000040000000000 | n).to_bytes(8)
        + h("00 00 05 00 00 00 00 00")
        + nested
    )


def test_13_1_data_heap() -> None:
    heap = Heap()
    heap.add_item(FakeItem(0x1600, bytes.fromhex("0102030405")))
    heap.add_item(FakeItem(0x1601, h("00 01 ff fe 01 2c"), immediate=True))
    expected = h("""
        53 04 03 05 00 00 00 06
        80 00 01 00 00 00 00 01
        80 00 02 00 00 00 00 06
        80 00 03 00 00 00 00 00
        80 00 04 00 00 00 00 06
        80 16 00 01 02 03 04 05
        00 16 01 00 00 00 00 00
        00 01 ff fe 01 2c
    """)
    packets = list(PacketGenerator(heap, 1, 1472))
    assert packets == [expected]
    assert len(expected) == 62


def test_13_1_variant_all_immediate() -> None:
    """Had samples been u1[4], it would be an immediate and the heap padded."""
    heap = Heap()
    heap.add_item(FakeItem(0x1600, bytes.fromhex("0102030405")))
    heap.add_item(FakeItem(0x1601, bytes([1, 2, 3, 4])))
    expected = h("""
        53 04 03 05 00 00 00 07
        80 00 01 00 00 00 00 01
        80 00 02 00 00 00 00 01
        80 00 03 00 00 00 00 00
        80 00 04 00 00 00 00 01
        80 16 00 01 02 03 04 05
        80 16 01 00 01 02 03 04
        00 00 00 00 00 00 00 00
        00
    """)
    assert list(PacketGenerator(heap, 1, 1472)) == [expected]


def test_13_2_descriptor_format() -> None:
    assert encode_descriptor(TIMESTAMP, Flavour()) == NESTED_13_2
    heap = Heap()
    heap.add_descriptor(FakeDescriptor(TIMESTAMP))
    packets = list(PacketGenerator(heap, 2, 1472))
    assert packets == [outer_descriptor_packet(2, NESTED_13_2)]
    assert len(packets[0]) == 155


def test_13_3_descriptor_numpy() -> None:
    assert encode_descriptor(SAMPLES, Flavour()) == NESTED_13_3
    heap = Heap()
    heap.add_descriptor(FakeDescriptor(SAMPLES))
    packets = list(PacketGenerator(heap, 3, 1472))
    assert packets == [outer_descriptor_packet(3, NESTED_13_3)]
    assert len(NESTED_13_3) == 0xA7


def test_13_2_13_3_decode() -> None:
    raw = decode_descriptor(NESTED_13_2, 0)
    assert raw is not None
    assert (raw.id, raw.name, raw.description, raw.format, raw.shape, raw.numpy_header) == (
        0x1600,
        b"timestamp",
        b"Sample counter",
        [("u", 40)],
        [],
        b"",
    )
    raw = decode_descriptor(NESTED_13_3, 0)
    assert raw is not None
    assert (raw.id, raw.name, raw.description, raw.format, raw.shape) == (
        0x1601,
        b"samples",
        b"Raw samples",
        [],
        [],
    )
    assert raw.numpy_header == SAMPLES.numpy_header


STOP_13_4 = h("""
    53 04 03 05 00 00 00 06
    80 00 01 00 00 00 00 04
    80 00 02 00 00 00 00 01
    80 00 03 00 00 00 00 00
    80 00 04 00 00 00 00 01
    80 00 06 00 00 00 00 02
    00 00 00 00 00 00 00 00
    00
""")


def test_13_4_stop_heap() -> None:
    heap = Heap()
    heap.add_end()
    assert list(PacketGenerator(heap, 4, 1472)) == [STOP_13_4]
    assert len(STOP_13_4) == 57


def test_13_4_start_heap_and_both() -> None:
    heap = Heap()
    heap.add_start()
    start = bytearray(STOP_13_4)
    start[47] = 0
    assert list(PacketGenerator(heap, 4, 1472)) == [bytes(start)]
    heap.add_end()
    (packet,) = PacketGenerator(heap, 4, 1472)
    assert packet[7] == 7
    assert packet[40:56] == h("80 00 06 00 00 00 00 00 80 00 06 00 00 00 00 02")


def test_13_5_two_packets() -> None:
    heap = Heap()
    heap.add_item(FakeItem(0x1602, bytes(range(20))))
    expected = [
        h("""
        53 04 03 05 00 00 00 05
        80 00 01 00 00 00 00 05 | 80 00 02 00 00 00 00 14
        80 00 03 00 00 00 00 00 | 80 00 04 00 00 00 00 10
        00 16 02 00 00 00 00 00
        00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
        """),
        h("""
        53 04 03 05 00 00 00 04
        80 00 01 00 00 00 00 05 | 80 00 02 00 00 00 00 14
        80 00 03 00 00 00 00 10 | 80 00 04 00 00 00 00 04
        10 11 12 13
        """),
    ]
    packets = list(PacketGenerator(heap, 5, 64))
    assert packets == expected
    assert [len(p) for p in packets] == [64, 44]


def test_13_6_spead_64_48() -> None:
    heap = Heap(Flavour(4, 64, 48, 0))
    heap.add_item(FakeItem(0x1600, bytes.fromhex("0102030405")))
    expected = h("""
        53 04 02 06 00 00 00 06
        80 01 00 00 00 00 00 06
        80 02 00 00 00 00 00 01
        80 03 00 00 00 00 00 00
        80 04 00 00 00 00 00 01
        96 00 00 01 02 03 04 05
        00 00 00 00 00 00 00 00
        00
    """)
    assert list(PacketGenerator(heap, 6, 1472)) == [expected]


# §10: item 0x12, name 'v', description 'd', format [('u',8),('i',16)], shape (3, None).
BUG_COMPAT_BODIES = [
    (Flavour(4, 64, 40, 0), "76 64 75 00 00 08 69 00 00 10 | 00 00 00 00 00 03 01 00 00 00 00 00"),
    (
        Flavour(4, 64, 40, 7),
        "76 64 75 00 00 08 69 00 00 10 | 00 00 00 00 00 00 00 03 02 00 00 00 00 00 00 00",
    ),
    (Flavour(4, 64, 48, 0), "76 64 75 00 08 69 00 10 | 00 00 00 00 00 00 03 01 00 00 00 00 00 00"),
]


@pytest.mark.parametrize(("flavour", "body"), BUG_COMPAT_BODIES)
def test_10_bug_compat_descriptor_bodies(flavour: Flavour, body: str) -> None:
    raw = raw_descriptor(0x12, b"v", b"d", [("u", 8), ("i", 16)], [3, None])
    encoded = encode_descriptor(raw, flavour)
    n_items = int.from_bytes(encoded[6:8])
    assert n_items == 9
    assert encoded[8 + 8 * n_items :] == h(body)
    bits = flavour.heap_address_bits
    assert encoded[:4] == bytes([0x53, 4, (64 - bits) // 8, bits // 8])
    decoded = decode_descriptor(encoded, flavour.bug_compat)
    assert decoded is not None
    assert (decoded.id, decoded.format, decoded.shape) == (0x12, [("u", 8), ("i", 16)], [3, None])
