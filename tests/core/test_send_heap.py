"""send.Heap and PacketGenerator with real items: immediacy, references, IDs, descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from spead2._items import Descriptor, Item
from spead2.protocols.descriptors import decode_descriptor
from spead2.protocols.flavour import Flavour
from spead2.protocols.heaps import Heap as ReceivedHeap
from spead2.send._heap import Heap, PacketGenerator

IMM = 1 << 63


def pointers_and_payload(heap: Heap, cnt: int = 1, mps: int = 1472) -> tuple[list[int], bytes]:
    """All heap pointers (minus the per-packet four) and the assembled payload."""
    pointers: list[int] = []
    payload = b""
    for packet in PacketGenerator(heap, cnt, mps):
        n = int.from_bytes(packet[6:8])
        words = [int.from_bytes(packet[8 + 8 * i : 16 + 8 * i]) for i in range(n)]
        pointers.extend(words[4:])
        payload += packet[8 + 8 * n :]
    return pointers, payload


def is_immediate(item: Item, flavour: Flavour | None = None) -> bool:
    heap = Heap(flavour or Flavour())
    heap.add_item(item)
    (entry,) = heap.entries
    return entry[1]


# ---------------------------------------------------------------------------
# Immediate or addressed (PROTOCOL.md §6.1, observed for SPEAD-64-40)

IMMEDIATE_64_40 = [
    Item(0x1000, "a", "", (), format=[("u", 8)], value=1),
    Item(0x1000, "a", "", (), format=[("u", 16)], value=1),
    Item(0x1000, "a", "", (), format=[("u", 32)], value=1),
    Item(0x1000, "a", "", (), format=[("u", 40)], value=1),
    Item(0x1000, "a", "", (), format=[("b", 8)], value=True),
    Item(0x1000, "a", "", (), format=[("f", 32)], value=1.5),
    Item(0x1000, "a", "", (5,), dtype="u1", value=np.arange(5, dtype="u1")),
    Item(0x1000, "a", "", (2,), dtype="<u2", value=np.arange(2, dtype="<u2")),
    Item(0x1000, "a", "", (), format=[("u", 8), ("u", 8)], value=(1, 2)),
    Item(0x1000, "a", "", (0,), dtype="u1", value=np.zeros(0, "u1")),
]
ADDRESSED_64_40 = [
    Item(0x1000, "a", "", (), format=[("u", 48)], value=1),
    Item(0x1000, "a", "", (), format=[("u", 64)], value=1),
    Item(0x1000, "a", "", (), format=[("f", 64)], value=1.5),
    Item(0x1000, "a", "", (6,), dtype="u1", value=np.arange(6, dtype="u1")),
    Item(0x1000, "a", "", (None,), format=[("u", 8)], value=[1]),
    Item(0x1000, "a", "", (2,), format=[("u", 4)], value=[1, 2]),
]


@pytest.mark.parametrize("item", IMMEDIATE_64_40, ids=repr)
def test_immediate_items(item: Item) -> None:
    assert is_immediate(item)


@pytest.mark.parametrize("item", ADDRESSED_64_40, ids=repr)
def test_addressed_items(item: Item) -> None:
    assert not is_immediate(item)


def test_six_byte_values_are_immediate_in_64_48() -> None:
    flavour = Flavour(4, 64, 48, 0)
    assert is_immediate(Item(0x1000, "a", "", (), format=[("u", 48)], value=1), flavour)
    assert is_immediate(
        Item(0x1000, "a", "", (6,), dtype="u1", value=np.arange(6, dtype="u1")), flavour
    )


def test_zero_byte_value_is_immediate_zero() -> None:
    heap = Heap()
    heap.add_item(Item(0x1001, "z", "", (0,), dtype="u1", value=np.zeros(0, "u1")))
    pointers, payload = pointers_and_payload(heap)
    assert pointers == [IMM | 0x1001 << 40, 0]
    assert payload == b"\0"


def test_example_13_1_with_real_items() -> None:
    heap = Heap()
    heap.add_item(
        Item(0x1600, "timestamp", "Sample counter", (), format=[("u", 40)], value=0x0102030405)
    )
    heap.add_item(
        Item(
            0x1601, "samples", "Raw samples", (3,), dtype=">i2", value=np.array([1, -2, 300], ">i2")
        )
    )
    (packet,) = PacketGenerator(heap, 1, 1472)
    assert packet == bytes.fromhex(
        "5304030500000006"
        "8000010000000001"
        "8000020000000006"
        "8000030000000000"
        "8000040000000006"
        "8016000102030405"
        "0016010000000000"
        "0001fffe012c"
    )


# ---------------------------------------------------------------------------
# Values are referenced, not copied


def test_in_place_changes_are_sent_rebinding_is_not() -> None:
    addressed = np.array([1, 2, 3, 4, 5, 6], "u1")
    immediate = np.array([7, 8], "u1")
    a = Item(0x1000, "a", "", (6,), dtype="u1", value=addressed)
    b = Item(0x1001, "b", "", (2,), dtype="u1", value=immediate)
    heap = Heap()
    heap.add_item(a)
    heap.add_item(b)
    addressed[0] = 0xAA
    immediate[1] = 0xBB
    a.value = np.zeros(6, "u1")
    pointers, payload = pointers_and_payload(heap)
    assert payload == bytes([0xAA, 2, 3, 4, 5, 6])
    assert pointers[1] == IMM | 0x1001 << 40 | 0x07BB


def test_encoding_errors_raise_from_add_item() -> None:
    heap = Heap()
    with pytest.raises(ValueError, match="None"):
        heap.add_item(Item(0x1000, "a", "", (), format=[("u", 8)]))
    with pytest.raises(AttributeError):
        heap.add_item(object())  # type: ignore[arg-type]
    assert heap.entries == []


class BufferItem:
    """An item whose encoded value is a given buffer."""

    def __init__(self, buffer: object, immediate: bool = False) -> None:
        self.id = 0x1000
        self.buffer = buffer
        self.immediate = immediate

    def to_buffer(self) -> object:
        return self.buffer

    def allow_immediate(self) -> bool:
        return self.immediate


def test_non_contiguous_and_unusual_buffers() -> None:
    matrix = np.arange(12, dtype=">u2").reshape(3, 4)
    cases = [
        (matrix[:, ::2], matrix[:, ::2].tobytes()),
        (matrix, matrix.tobytes()),
        (np.array([1, 2], dtype="datetime64[s]"), np.array([1, 2], "<i8").tobytes()),
        (np.zeros(2, dtype=[("a", ">u2"), ("b", "u1")]), bytes(6)),
        (bytearray(b"xyz"), b"xyz"),
    ]
    for buffer, expected in cases:
        heap = Heap()
        heap.add_item(BufferItem(buffer))
        assert pointers_and_payload(heap)[1] == expected


# ---------------------------------------------------------------------------
# IDs: refused when they do not fit (the reference truncates silently)


@pytest.mark.parametrize(
    ("bits", "good", "bad"),
    [
        (40, 0x7FFFFF, 0x800000),
        (48, 0x7FFF, 0x18000),
        (56, 0x7F, 0x80),
        (8, (1 << 55) - 1, 1 << 55),
    ],
)
def test_item_id_width(bits: int, good: int, bad: int) -> None:
    heap = Heap(Flavour(4, 64, bits, 0))
    heap.add_item(Item(good, "a", "", (), format=[("u", 8)], value=1))
    item = Item(bad, "a", "", (), format=[("u", 8)], value=1)
    with pytest.raises(ValueError, match=rf"Item ID out of range: {bad:#x}.*SPEAD-64-{bits}"):
        heap.add_item(item)
    assert len(heap.entries) == 1


# ---------------------------------------------------------------------------
# Descriptors, control items, properties


@pytest.mark.parametrize("bug_compat", [0, 7])
def test_descriptors_round_trip(bug_compat: int) -> None:
    flavour = Flavour(4, 64, 40, bug_compat)
    described = [
        Descriptor(0x1600, "timestamp", "Sample counter", (), format=[("u", 40)]),
        Descriptor(0x1601, "samples", "Raw samples", (3, 2), dtype="<f4", order="F"),
        Descriptor(0x1602, "var", "variable", (None, 4), format=[("i", 12)]),
    ]
    heap = Heap(flavour)
    for descriptor in described:
        heap.add_descriptor(descriptor)
    pointers, payload = pointers_and_payload(heap, cnt=2)
    received = ReceivedHeap(2, flavour, pointers, bytearray(payload))
    raws = received.get_descriptors()
    assert [raw.id for raw in raws] == [0x1600, 0x1601, 0x1602]
    for descriptor, raw in zip(described, raws, strict=True):
        back = Descriptor.from_raw(raw, flavour)
        assert (back.id, back.name, back.description, back.shape) == (
            descriptor.id,
            descriptor.name,
            descriptor.description,
            descriptor.shape,
        )
        assert back.dtype == descriptor.dtype
        assert back.order == descriptor.order
        if descriptor.format is not None:
            assert [tuple(f) for f in back.format] == [tuple(f) for f in descriptor.format]


def test_swap_endian_header_is_swapped_on_the_wire() -> None:
    descriptor = Descriptor(0x1601, "s", "", (3,), dtype="<u2")
    heap = Heap(Flavour(4, 64, 40, 7))
    heap.add_descriptor(descriptor)
    (entry,) = heap.entries
    raw = decode_descriptor(entry[2], 7)
    assert raw is not None
    assert b"'>u2'" in raw.numpy_header


def test_control_items_in_call_order() -> None:
    heap = Heap()
    heap.add_end()
    heap.add_start()
    pointers, payload = pointers_and_payload(heap)
    assert pointers == [IMM | 6 << 40 | 2, IMM | 6 << 40 | 0, 0]
    assert payload == b"\0"


def test_properties() -> None:
    flavour = Flavour(4, 64, 48, 0)
    heap = Heap(flavour)
    assert heap.flavour == flavour
    assert Heap().flavour == Flavour()
    with pytest.raises(AttributeError):
        heap.flavour = Flavour()  # type: ignore[misc]
    assert heap.repeat_pointers is False
    heap.repeat_pointers = True
    assert heap.repeat_pointers is True
    with pytest.raises(TypeError):
        Heap("SPEAD-64-40")  # type: ignore[arg-type]


def test_packet_generator() -> None:
    heap = Heap()
    heap.add_item(Item(0x1000, "a", "", (3000,), dtype="u1", value=np.ones(3000, "u1")))
    generator = PacketGenerator(heap, 7, 1472)
    assert iter(generator) is generator
    packets = list(generator)
    assert len(packets) == 3 and all(isinstance(p, bytes) for p in packets)
    assert list(generator) == []
    # The same heap can be sent again, with another cnt and packet size.
    assert len(list(PacketGenerator(heap, 8, 9000))) == 1
    with pytest.raises(ValueError, match="^packet size is too small"):
        PacketGenerator(heap, 1, 55)
    with pytest.raises(ValueError, match="cnt out of range"):
        PacketGenerator(heap, 1 << 40, 1472)
    with pytest.raises(ValueError, match="cnt out of range"):
        PacketGenerator(heap, -1, 1472)
    assert list(PacketGenerator(heap, (1 << 40) - 1, 9000))[0][8:16] == bytes.fromhex(
        "800001ffffffffff"
    )


@pytest.mark.parametrize("shape", [(2, 0), (0, 3), (0,)])
def test_zero_size_multidimensional_values(shape):
    """Regression: memoryview.cast refused shapes containing 0 (found by interop tests)."""
    item = Item(0x1000, "e", "", shape, dtype="u1", value=np.zeros(shape, "u1"))
    heap = Heap()
    heap.add_item(item)
    packets = list(PacketGenerator(heap, 1, 1472))
    assert len(packets) == 1
