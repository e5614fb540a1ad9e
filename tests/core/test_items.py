"""Descriptor, Item and ItemGroup (API.md §1.8–1.10)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spead2
import spead2.send
from spead2.protocols.constants import DESCRIPTOR_ID
from spead2.protocols.heaps import Heap as RecvHeap
from spead2.protocols.heaps import RawItem
from spead2.protocols.raw_descriptor import RawDescriptor

# --------------------------------------------------------------------------
# Descriptor construction


# Messages and their precedence observed from spead2 4.5.1.
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (((None, None), "u1"), {}, "Cannot have multiple unknown dimensions"),
        (((None, None),), {"format": []}, "Cannot have multiple unknown dimensions"),
        (((None, None),), {}, "Cannot have multiple unknown dimensions"),
        (((None, None), "O"), {}, "Cannot have multiple unknown dimensions"),
        (((2,), "O"), {}, "Cannot use dtype that has reference-counted objects"),
        (((None,), "O"), {}, "Cannot use dtype that has reference-counted objects"),
        (
            ((2,), "O"),
            {"format": [("u", 8)]},
            "Cannot use dtype that has reference-counted objects",
        ),
        (((2,), [("a", "O")]), {}, "Cannot use dtype that has reference-counted objects"),
        (((2,), "u1"), {"format": [("u", 8)]}, "Only one of dtype and format can be specified"),
        (((2,), "V0"), {}, "Cannot use zero-sized dtype"),
        (((2,), "S0"), {}, "Cannot use zero-sized dtype"),
        (((None,), "u1"), {}, "Cannot have unknown dimensions when using numpy descriptor"),
        (((2,),), {}, "One of dtype and format must be specified"),
        (
            ((2,),),
            {"format": [("u", 8)], "order": "F"},
            "When specifying format, order must be 'C'",
        ),
        (
            ((2,),),
            {"format": [("u", 8)], "order": "X"},
            "When specifying format, order must be 'C'",
        ),
        (((2,),), {"format": [], "order": "F"}, "When specifying format, order must be 'C'"),
        (((2,), "u1"), {"order": "X"}, "Order must be 'C' or 'F'"),
        (((2,),), {"format": []}, "empty format"),
        (((2,),), {"format": [("u", 0)]}, "zero-length field (bug_compat mismatch?)"),
        (((2,),), {"format": [("u", -1)]}, "negative-length field"),
        (((2,),), {"format": [("f", 16)]}, "illegal format (f, 16)"),
        (((2,),), {"format": [("c", 16)]}, "illegal format (c, 16)"),
    ],
)
def test_descriptor_errors(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        spead2.Descriptor(1, "n", "d", *args, **kwargs)
    assert str(info.value) == message


def test_descriptor_attributes() -> None:
    d = spead2.Descriptor(1, "n", "d", [2], "u1")
    assert (d.id, d.name, d.description) == (1, "n", "d")
    assert d.shape == (2,) and type(d.shape) is tuple
    assert d.dtype == np.dtype("u1") and isinstance(d.dtype, np.dtype)
    assert d.format is None
    assert d.order == "C"
    d2 = spead2.Descriptor(1, "n", "d", [2, None], format=[("u", 8)])
    assert d2.dtype is None
    assert d2.format == [("u", 8)]
    assert d2.shape == (2, None)
    d3 = spead2.Descriptor(1, "n", "d", (2,), np.uint8, "F")
    assert d3.order == "F"


def test_descriptor_members() -> None:
    d = spead2.Descriptor(1, "n", "d", [2, None], format=[("u", 8)])
    assert d.itemsize_bits == 8
    assert d.is_variable_size() is True
    assert d.allow_immediate() is False
    assert d.dynamic_shape(10) == [2, 5]
    assert d.dynamic_shape(3) == [2, 1]
    assert d.compatible_shape((2, 5))
    assert not d.compatible_shape((3, 5))
    assert not d.compatible_shape((2,))
    assert spead2.Descriptor(1, "n", "d", [0, None], format=[("u", 8)]).dynamic_shape(10) == [0, 0]

    fixed = spead2.Descriptor(1, "n", "d", (3,), format=[("u", 4), ("i", 12)])
    assert fixed.itemsize_bits == 16
    assert fixed.is_variable_size() is False
    assert fixed.allow_immediate() is True
    assert fixed.dynamic_shape(100) == (3,)
    assert spead2.Descriptor(1, "n", "d", (2,), format=[("u", 4)]).allow_immediate() is False
    assert spead2.Descriptor(1, "n", "d", (2,), "<f8").itemsize_bits == 64
    assert spead2.Descriptor(1, "n", "d", (), [("a", "u1"), ("b", ">i4")]).allow_immediate() is True


# --------------------------------------------------------------------------
# from_raw / to_raw


def _raw(
    numpy_header: bytes = b"", shape: list[int | None] | None = None, fmt: Any = None
) -> RawDescriptor:
    raw = RawDescriptor()
    raw.id = 0x1234
    raw.name = b"nm"
    raw.description = b"desc"
    raw.numpy_header = numpy_header
    raw.shape = shape or []
    raw.format = fmt or []
    return raw


def test_from_raw_numpy_header() -> None:
    header = b"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}"
    item = spead2.Item.from_raw(_raw(header, [5], [("u", 8)]), spead2.Flavour())
    assert type(item) is spead2.Item
    assert (item.id, item.name, item.description) == (0x1234, "nm", "desc")
    assert item.shape == (2, 3)
    assert item.dtype == np.dtype("<f4")
    assert item.order == "F"
    assert item.format is None
    assert item.version == 1 and item.value is None
    d = spead2.Descriptor.from_raw(_raw(header), spead2.Flavour())
    assert type(d) is spead2.Descriptor


def test_from_raw_swap_endian() -> None:
    flavour = spead2.Flavour(4, 64, 40, spead2.BUG_COMPAT_SWAP_ENDIAN)
    header = b"{'descr': [('a', '<f4'), ('b', '>i2')], 'fortran_order': False, 'shape': (2, 3)}"
    d = spead2.Descriptor.from_raw(_raw(header), flavour)
    assert d.dtype == np.dtype([("a", ">f4"), ("b", "<i2")])
    d = spead2.Descriptor.from_raw(_raw(header), spead2.Flavour(4, 64, 40, 3))
    assert d.dtype == np.dtype([("a", "<f4"), ("b", ">i2")])


def test_from_raw_format() -> None:
    d = spead2.Descriptor.from_raw(_raw(b"", [5, None], [("u", 8)]), spead2.Flavour())
    assert d.shape == (5, None)
    assert d.dtype is None
    assert d.format == [("u", 8)]
    assert d.order == "C"
    with pytest.raises(ValueError, match="^empty format$"):
        spead2.Descriptor.from_raw(_raw(b"", [5], []), spead2.Flavour())
    with pytest.raises(ValueError, match="^Cannot have multiple unknown dimensions$"):
        spead2.Descriptor.from_raw(_raw(b"", [None, None], [("u", 8)]), spead2.Flavour())


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            b"{'descr': 'O', 'fortran_order': True, 'shape': (2, 3)}",
            "Cannot use dtype that has reference-counted objects",
        ),
        (b"{'descr': 'V0', 'fortran_order': True, 'shape': (2, 3)}", "Cannot use zero-sized dtype"),
        (b"[1,2]", "Descriptor is not a dictionary: [1, 2]"),
    ],
)
def test_from_raw_errors(header: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        spead2.Item.from_raw(_raw(header), spead2.Flavour())
    assert str(info.value) == message


def test_from_raw_non_ascii() -> None:
    with pytest.raises(UnicodeDecodeError):
        spead2.Item.from_raw(_raw(b"\xff"), spead2.Flavour())


def test_to_raw() -> None:
    flavour = spead2.Flavour()
    raw = spead2.Descriptor(7, "n", "d", (2, 3), "<f4", order="F").to_raw(flavour)
    assert (raw.id, raw.name, raw.description) == (7, b"n", b"d")
    # Observed from spead2 4.5.1.
    assert raw.numpy_header == b"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}"
    assert raw.format == []
    assert raw.shape == [2, 3]
    raw = spead2.Descriptor(1, "n", "d", (2, 3), "<f4").to_raw(spead2.Flavour(4, 64, 40, 4))
    assert raw.numpy_header == b"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3)}"
    raw = spead2.Descriptor(1, "n", "d", (), "u1").to_raw(spead2.Flavour(4, 64, 40, 4))
    assert raw.numpy_header == b"{'descr': '|u1', 'fortran_order': False, 'shape': ()}"
    raw = spead2.Descriptor(1, "n", "d", (None, 3), format=[("u", 4)]).to_raw(flavour)
    assert raw.numpy_header == b""
    assert raw.format == [("u", 4)]
    assert raw.shape == [None, 3]


@pytest.mark.parametrize("bug_compat", [0, spead2.BUG_COMPAT_SWAP_ENDIAN])
def test_raw_round_trip(bug_compat: int) -> None:
    flavour = spead2.Flavour(4, 64, 40, bug_compat)
    for d in [
        spead2.Descriptor(7, "n", "d", (2, 3), [("a", "<f4"), ("b", ">i2")], order="F"),
        spead2.Descriptor(8, "m", "", (None, 2), format=[("u", 4), ("c", 8)]),
    ]:
        raw = d.to_raw(flavour)
        if raw.numpy_header:
            raw.shape, raw.format = [], []  # as a receiver reports it
        back = spead2.Descriptor.from_raw(raw, flavour)
        assert (back.id, back.name, back.description) == (d.id, d.name, d.description)
        assert (back.shape, back.dtype, back.order, back.format) == (
            d.shape,
            d.dtype,
            d.order,
            d.format,
        )


# --------------------------------------------------------------------------
# Item


def test_item_value_and_version() -> None:
    item = spead2.Item(1, "n", "d", (), format=[("u", 8)], value=5)
    assert item.version == 1
    assert item.value == 5
    item.value = 6
    assert item.version == 2
    with pytest.raises(ValueError, match="^Item value cannot be set to None$"):
        item.value = None
    assert item.version == 2 and item.value == 6
    empty = spead2.Item(1, "n", "d", (), format=[("u", 8)])
    assert empty.value is None and empty.version == 1


def test_item_in_place_change_not_detected() -> None:
    value = np.zeros(3, np.uint8)
    item = spead2.Item(1, "n", "d", (3,), np.uint8, value=value)
    value[0] = 1
    assert item.version == 1
    assert item.to_buffer()[0] == 1  # the array itself is what gets sent


def test_item_positional_args() -> None:
    item = spead2.Item(1, "n", "d", (2,), None, "C", [("u", 8)], [1, 2])
    assert item.value == [1, 2]


def test_set_from_raw_bumps_version() -> None:
    item = spead2.Item(1, "n", "d", (), format=[("u", 8)])
    raw = RawItem(1, True, 7, memoryview(bytearray(b"\0\0\0\0\x07")))
    item.set_from_raw(raw)
    assert item.value == 7 and item.version == 2
    item.set_from_raw(raw, new_order="|")
    assert item.version == 3


# --------------------------------------------------------------------------
# ItemGroup: adding items


def _u8(
    ig: spead2.ItemGroup, id: int | None, name: str, description: str = "d", **kwargs: Any
) -> spead2.Item:
    return ig.add_item(id, name, description, (), format=[("u", 8)], **kwargs)


def test_auto_id() -> None:
    ig = spead2.ItemGroup()
    a = _u8(ig, None, "a")
    _u8(ig, 0x1002, "b")
    c = _u8(ig, None, "c")
    d = _u8(ig, None, "d")
    assert (a.id, c.id, d.id) == (0x1000, 0x1001, 0x1003)
    assert _u8(ig, 5, "e").id == 5


def test_add_item_keywords() -> None:
    ig = spead2.ItemGroup()
    item = ig.add_item(
        id=0x5001,
        name="k",
        description="d",
        shape=(),
        dtype=None,
        order="C",
        format=[("u", 8)],
        value=1,
    )
    assert ig["k"] is item and item.value == 1


def test_identical_descriptor_keeps_existing(caplog: pytest.LogCaptureFixture) -> None:
    ig = spead2.ItemGroup()
    a = _u8(ig, 0x1000, "a", value=1)
    with caplog.at_level(logging.INFO, logger="spead2"):
        a2 = _u8(ig, 0x1000, "a", value=7)
        a3 = _u8(ig, 0x1000, "a")
    assert a2 is not a and a3 is not a  # the new object is returned...
    assert ig["a"] is a and ig[0x1000] is a  # ...but the group keeps the old one
    assert a.value == 7 and a.version == 2  # the value was assigned to it
    assert a2.version == 1 and a2.value == 7
    assert a3.value is None
    assert not caplog.records
    assert len(ig) == 1


def test_identical_dtype_descriptor() -> None:
    ig = spead2.ItemGroup()
    f = ig.add_item(0x2000, "f", "d", (2,), dtype="u1", value=np.zeros(2, "u1"))
    ig.add_item(0x2000, "f", "d", (2,), dtype=np.uint8)
    ig.add_item(0x2000, "f", "d", [2], dtype=np.uint8)
    assert ig["f"] is f and f.version == 1
    f4 = ig.add_item(0x2000, "f", "d", [2], dtype=">u2")
    assert ig["f"] is f4 and f4.version == 2


def test_format_compared_as_given() -> None:
    # As the reference: a tuple or list-of-lists format is a different descriptor.
    ig = spead2.ItemGroup()
    g = _u8(ig, 0x3000, "g")
    ig.add_item(0x3000, "g", "d", (), format=(("u", 8),))
    assert ig["g"] is not g


def test_replacement(caplog: pytest.LogCaptureFixture) -> None:
    ig = spead2.ItemGroup()
    a = _u8(ig, 0x1000, "a", value=1)
    b = _u8(ig, 0x1002, "b")
    c = _u8(ig, 0x1001, "c")
    d = _u8(ig, 0x1003, "d")
    with caplog.at_level(logging.INFO, logger="spead2"):
        a4 = _u8(ig, 0x1000, "a", description="d2")
    assert [r.getMessage() for r in caplog.records] == [
        "Descriptor replacement for ID 0x1000, name a"
    ]
    assert caplog.records[0].levelno == logging.INFO
    assert ig["a"] is a4 and a4.version == 2 and a4.value is None
    assert list(ig.keys()) == ["b", "c", "d", "a"]
    assert list(ig.ids()) == [0x1002, 0x1001, 0x1003, 0x1000]
    assert a.version == 1  # the dropped item is left alone

    b.value = 3
    b.value = 4
    assert b.version == 3
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="spead2"):
        # same ID as b, same name as c: both go, version beats both
        e = _u8(ig, 0x1002, "c")
    assert [r.getMessage() for r in caplog.records] == [
        "Descriptor replacement for ID 0x1002, name c"
    ]
    assert e.version == 4
    assert list(ig.keys()) == ["d", "a", "c"]
    assert list(ig.ids()) == [0x1003, 0x1000, 0x1002]
    assert len(ig) == 3
    assert "b" not in ig and 0x1001 not in ig
    assert ig["c"] is e and ig[0x1002] is e
    assert d.version == 1 and c.version == 1


def test_replacement_keeps_higher_new_version() -> None:
    ig = spead2.ItemGroup()
    _u8(ig, 1, "a")
    new = spead2.Item(1, "a", "other", (), format=[("u", 8)])
    new.version = 10
    ig._add_item(new)
    assert ig["a"].version == 10


def test_name_collision_only() -> None:
    ig = spead2.ItemGroup()
    a = _u8(ig, 0x1000, "a")
    a.value = 1
    other = _u8(ig, 0x2000, "a")
    assert ig["a"] is other and other.version == 3
    assert 0x1000 not in ig and list(ig.ids()) == [0x2000]


def test_lookup() -> None:
    ig = spead2.ItemGroup()
    e = _u8(ig, 0x1002, "c")
    assert 0x1002 in ig and "c" in ig and "b" not in ig and 5 not in ig
    assert np.int64(0x1002) in ig
    assert ig[np.int32(0x1002)] is e
    with pytest.raises(KeyError):
        ig["zz"]
    with pytest.raises(KeyError):
        ig[5]
    assert list(ig.items()) == [("c", e)]
    assert list(ig.values()) == [e]
    assert type(ig.keys()).__name__ == "dict_keys"
    assert type(ig.ids()).__name__ == "dict_keys"


def test_value_none_with_identical_descriptor_is_fine() -> None:
    ig = spead2.ItemGroup()
    h = _u8(ig, 0x4000, "h", value=5)
    _u8(ig, 0x4000, "h", value=None)
    assert h.value == 5 and h.version == 1


# --------------------------------------------------------------------------
# ItemGroup.update with received heaps


def to_recv_heap(heap: spead2.send.Heap, cnt: int = 1, bug_compat: int = 0) -> RecvHeap:
    """What a receiver assembles from ``heap`` (pointers and payload, no packets)."""
    flavour = heap.flavour
    bits = flavour.heap_address_bits
    pointers = []
    payload = bytearray()
    for item_id, is_immediate, view in heap.entries:
        if is_immediate:
            pointers.append(1 << 63 | item_id << bits | int.from_bytes(view))
        else:
            pointers.append(item_id << bits | len(payload))
            payload += view
    recv_flavour = spead2.Flavour(4, 64, bits, bug_compat)
    return RecvHeap(cnt, recv_flavour, pointers, payload)


def _sender() -> spead2.send.ItemGroup:
    ig = spead2.send.ItemGroup()
    ig.add_item(0x1000, "a", "d", (), format=[("u", 8)], value=1)
    ig.add_item(0x1001, "b", "d", (2,), dtype=">u2", value=np.array([1, 2], ">u2"))
    ig.add_item(0x1002, "s", "d", (None,), format=[("c", 8)], value="hello")
    return ig


def test_update_sequence() -> None:
    sender = _sender()
    receiver = spead2.ItemGroup()
    # descriptors only
    assert receiver.update(to_recv_heap(sender.get_heap(data="none"))) == {}
    assert [(k, receiver[k].version) for k in receiver.keys()] == [("a", 1), ("b", 1), ("s", 1)]
    assert receiver["b"].dtype == np.dtype(">u2")
    # values only
    result = receiver.update(to_recv_heap(sender.get_heap(descriptors="none", data="all")))
    # heap item order: addressed ('s'), then immediates by value ('a' = 1, 'b' = 0x10002)
    assert list(result) == ["s", "a", "b"]
    assert all(result[name] is receiver[name] for name in result)
    assert receiver["a"].value == 1 and receiver["a"].version == 3  # net +2, as the reference
    assert receiver["b"].value.tolist() == [1, 2]
    assert receiver["b"].value.dtype == np.dtype("=u2")
    assert receiver["s"].value == "hello"
    # both: identical descriptors keep the objects
    a = receiver["a"]
    result = receiver.update(to_recv_heap(sender.get_heap(descriptors="all", data="all")))
    assert receiver["a"] is a and a.version == 5
    assert set(result) == {"a", "b", "s"}


def test_update_new_order() -> None:
    sender = _sender()
    receiver = spead2.ItemGroup()
    receiver.update(to_recv_heap(sender.get_heap()), new_order="|")
    assert receiver["b"].value.dtype == np.dtype(">u2")


def test_update_descriptors_before_values() -> None:
    sender = _sender()
    receiver = spead2.ItemGroup()
    result = receiver.update(to_recv_heap(sender.get_heap()))
    assert set(result) == {"a", "b", "s"}
    assert receiver["a"].value == 1 and receiver["a"].version == 3


def test_update_unknown_and_reserved_ids(caplog: pytest.LogCaptureFixture) -> None:
    ig = spead2.send.ItemGroup()
    ig.add_item(0x1000, "a", "d", (), format=[("u", 8)], value=1)
    ig.add_item(0x7, "b", "d", (), format=[("u", 8)], value=2)
    ig.add_item(0x6, "c", "d", (), format=[("u", 8)], value=5)
    receiver = spead2.ItemGroup()
    with caplog.at_level(logging.WARNING, logger="spead2"):
        assert receiver.update(to_recv_heap(ig.get_heap(descriptors="none", data="all"))) == {}
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [
        "Item with ID 0x1000 received but there is no descriptor",
        "Item with ID 0x7 received but there is no descriptor",
    ]
    result = receiver.update(to_recv_heap(ig.get_heap(descriptors="all", data="all")))
    # ID 6 (stream control) is never treated as an item, even with a descriptor
    assert set(result) == {"a", "b"}
    assert receiver["c"].value is None and receiver["c"].version == 1


def test_update_swap_endian() -> None:
    flavour = spead2.Flavour(4, 64, 40, spead2.BUG_COMPAT_SWAP_ENDIAN)
    ig = spead2.send.ItemGroup(flavour=flavour)
    ig.add_item(0x1000, "x", "d", (2,), dtype="<u2", value=np.array([1, 2], "<u2"))
    heap = ig.get_heap()
    receiver = spead2.ItemGroup()
    receiver.update(to_recv_heap(heap, bug_compat=spead2.BUG_COMPAT_SWAP_ENDIAN), new_order="|")
    # data bytes unchanged, header says '>u2', the receiver swaps it back
    assert receiver["x"].dtype == np.dtype("<u2")
    assert receiver["x"].value.tolist() == [1, 2]
    wrong = spead2.ItemGroup()
    wrong.update(to_recv_heap(heap), new_order="|")
    assert wrong["x"].dtype == np.dtype(">u2")
    assert wrong["x"].value.tolist() == [256, 512]


def test_update_decode_error_propagates() -> None:
    sender = spead2.send.ItemGroup()
    sender.add_item(0x1000, "x", "d", (2,), format=[("u", 8)], value=[1, 2])
    receiver = spead2.ItemGroup()
    receiver.add_item(0x1000, "x", "d", (11,), format=[("u", 8)])
    with pytest.raises(ValueError, match=r"^Item x has too few elements for shape \(5 < 11\)$"):
        receiver.update(to_recv_heap(sender.get_heap(descriptors="none")))


def test_update_replaced_descriptor_bumps_version() -> None:
    sender = spead2.send.ItemGroup()
    sender.add_item(0x1000, "x", "d", (), format=[("u", 8)], value=1)
    receiver = spead2.ItemGroup()
    receiver.update(to_recv_heap(sender.get_heap()))
    old = receiver["x"]
    assert old.version == 3
    sender.add_item(0x1000, "x", "changed", (), format=[("u", 16)], value=300)
    result = receiver.update(to_recv_heap(sender.get_heap()))
    new = receiver["x"]
    assert new is not old and result == {"x": new}
    assert new.value == 300
    assert new.version == 6  # 4 on install (old + 1), then +2 for the value


def test_update_zero_length_fixed_shape() -> None:
    """The reference fails to decode this immediate; we deliver an empty array."""
    sender = spead2.send.ItemGroup()
    sender.add_item(0x1000, "x", "d", (0,), dtype="u1", value=np.zeros(0, "u1"))
    heap = sender.get_heap()
    assert [entry[1] for entry in heap.entries if entry[0] == 0x1000] == [True]
    receiver = spead2.ItemGroup()
    receiver.update(to_recv_heap(heap))
    assert receiver["x"].value.shape == (0,)


def test_descriptor_heap_uses_descriptor_id() -> None:
    heap = _sender().get_heap(data="none")
    assert [entry[0] for entry in heap.entries] == [DESCRIPTOR_ID] * 3


def test_update_refuses_incomplete_heap_clearly():
    from spead2.protocols.flavour import Flavour
    from spead2.protocols.heaps import IncompleteHeap

    heap = IncompleteHeap(5, Flavour(), [], 100, 10, [])
    with pytest.raises(TypeError, match=r"complete heap .*IncompleteHeap \(cnt=5\)"):
        spead2.ItemGroup().update(heap)


def test_update_calls_an_overridden_set_from_raw() -> None:
    calls: list[tuple[int, bool, bytes]] = []

    class Recording(spead2.Item):
        def set_from_raw(self, raw_item: Any, new_order: str = "=") -> None:
            calls.append((raw_item.id, raw_item.is_immediate, bytes(raw_item)))
            super().set_from_raw(raw_item, new_order=new_order)

    sender = _sender()
    receiver = spead2.ItemGroup()
    receiver.update(to_recv_heap(sender.get_heap(data="none")))
    for name in ("a", "s"):
        old = receiver[name]
        receiver._by_id[old.id] = receiver._by_name[name] = Recording(
            old.id, old.name, old.description, old.shape, old.dtype, old.order, old.format
        )
    result = receiver.update(to_recv_heap(sender.get_heap(descriptors="none", data="all")))
    assert list(result) == ["s", "a", "b"]
    assert sorted(calls) == [(0x1000, True, b"\0\0\0\0\x01"), (0x1002, False, b"hello")]
    assert receiver["s"].value == "hello" and receiver["s"].version == 3
    assert receiver["a"].value == 1 and receiver["a"].version == 3


def test_update_accepts_any_heap_like_object() -> None:
    sender = _sender()
    heap = to_recv_heap(sender.get_heap())

    class Wrapped:
        flavour = heap.flavour

        def get_descriptors(self) -> Any:
            return heap.get_descriptors()

        def get_items(self) -> Any:
            return heap.get_items()

    direct, wrapped = spead2.ItemGroup(), spead2.ItemGroup()
    assert list(direct.update(heap)) == list(wrapped.update(Wrapped()))
    for name in ("a", "b", "s"):
        assert np.array_equal(direct[name].value, wrapped[name].value)
        assert direct[name].version == wrapped[name].version


# --------------------------------------------------------------------------
# ItemGroup.update's plan for repeated layouts against the general path
#
# Our own heaps take a plan worked out once per layout (see _UpdatePlan);
# any other heap-like object takes the general path, one RawItem at a time,
# which defines correct behaviour. Both must give the same returned dict,
# the same values, the same versions and the same errors, whatever happens
# between heaps.


class _General:
    """A heap seen only through the public heap API: ItemGroup.update's general path."""

    def __init__(self, heap: RecvHeap) -> None:
        self.flavour = heap.flavour
        self._heap = heap

    def get_descriptors(self) -> Any:
        return self._heap.get_descriptors()

    def get_items(self) -> Any:
        return self._heap.get_items()


def _value_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        content = value.tolist() if value.dtype.hasobject else value.tobytes(order="A")
        return ("array", value.dtype.str, value.shape, content, value.flags.f_contiguous)
    return (type(value).__name__, value.tobytes() if isinstance(value, np.generic) else value)


def _outcome(group: spead2.ItemGroup, heap: Any, new_order: str) -> Any:
    try:
        result = group.update(heap, new_order=new_order)
    except Exception as exc:  # the same error, at the same point, on both paths
        result = exc
    state = [(item.id, item.name, item.version, _value_key(item.value)) for item in group.values()]
    if isinstance(result, Exception):
        return ("error", type(result).__name__, str(result), state)
    items = list(group.values())
    assert all(any(item is known for known in items) for item in result.values())
    return ([(name, item.id) for name, item in result.items()], state)


def _descriptor_heap(specs: list[tuple[int, str, Any, Any]], cnt: int) -> RecvHeap:
    sender = spead2.send.ItemGroup()
    for item_id, name, shape, kind in specs:
        if isinstance(kind, list):
            sender.add_item(item_id, name, "d", shape, format=kind)
        else:
            dtype, order = kind
            sender.add_item(item_id, name, "d", shape, dtype=dtype, order=order)
    return to_recv_heap(sender.get_heap(descriptors="all", data="none"), cnt)


def _value_heap(values: list[tuple[int, bytes]], immediates: list[tuple[int, int]], cnt: int) -> RecvHeap:
    """A heap of addressed values placed back to back, in the given order, and immediates."""
    bits = 40
    pointers = []
    payload = bytearray()
    for item_id, data in values:
        pointers.append(item_id << bits | len(payload))
        payload += data
    for item_id, value in immediates:
        pointers.append(1 << 63 | item_id << bits | value)
    return RecvHeap(cnt, spead2.Flavour(4, 64, bits, 0), pointers, payload)


_IDS = [0x1000, 0x1001, 0x1002]
_SHAPES = [(), (1,), (3,), (2, 2), (None,), (2, None)]
_KINDS: list[Any] = [
    ("u1", "C"), (">u2", "C"), ("<u4", "F"), (">f8", "C"), ("<i2", "F"),
    [("u", 8)], [("u", 16)], [("u", 12)], [("c", 8)], [("u", 8), ("i", 8)], [("u", 48)],
]


@st.composite
def _descriptor_specs(draw: Any) -> list[tuple[int, str, Any, Any]]:
    specs = []
    for item_id in draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(_KINDS))
        shape = draw(st.sampled_from(_SHAPES))
        if not isinstance(kind, list) and None in shape:
            shape = tuple(2 if dim is None else dim for dim in shape)
        name = draw(st.sampled_from(["a", "b", "c", f"n{item_id:x}"]))
        specs.append((item_id, name, shape, kind))
    return specs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_update_plan_matches_general_path(data: Any) -> None:
    """Random sequences of descriptor heaps, value heaps with layouts that repeat
    (values of any length, unknown and reserved IDs, immediates, two pointers at
    one address) and changes made to items in between: both paths agree."""
    # Layouts that come back heap after heap: (id, length) lists.
    layout_ids = st.sampled_from([*_IDS, *_IDS, 0x2000, 0x3])
    layouts = data.draw(st.lists(
        st.lists(st.tuples(layout_ids, st.integers(0, 12)), min_size=1, max_size=3),
        min_size=1, max_size=2,
    ))
    fast, general = spead2.ItemGroup(), spead2.ItemGroup()
    new_order = data.draw(st.sampled_from(["=", "|", ">"]))
    for cnt in range(1, data.draw(st.integers(1, 20)) + 1):
        event = data.draw(st.sampled_from(["descriptors", "values", "values", "change"]))
        if event == "descriptors":
            heap = _descriptor_heap(data.draw(_descriptor_specs()), cnt)
        elif event == "values":
            layout = data.draw(st.sampled_from(layouts))
            values = [(item_id, data.draw(st.binary(min_size=length, max_size=length)))
                      for item_id, length in layout]
            immediates = data.draw(st.lists(
                st.tuples(st.sampled_from(_IDS), st.integers(0, 2**40 - 1)), max_size=2))
            heap = _value_heap(values, immediates, cnt)
        else:
            # Changed in place between heaps, on both groups alike.
            item_id = data.draw(st.sampled_from(_IDS))
            change = data.draw(st.sampled_from(["shape", "shape", "dtype", "name", "value", "replace"]))
            shape = data.draw(st.sampled_from([(1,), (2,), (3,), ()]))
            for group in (fast, general):
                if change == "replace":  # by the application: a new Item object
                    group.add_item(item_id, "r", "d", shape, dtype=">u2")
                    continue
                if item_id not in group:
                    continue
                item = group[item_id]
                if change == "shape":
                    item.shape = shape
                elif change == "dtype" and item.dtype is not None:
                    item.dtype = np.dtype(">u2")
                elif change == "name":
                    item.name = "renamed"
                else:
                    item.value = 7
            continue
        assert _outcome(fast, heap, new_order) == _outcome(general, _General(heap), new_order)
        # The same heap object again: its layout is the plan's own list now.
        assert _outcome(fast, heap, new_order) == _outcome(general, _General(heap), new_order)


def test_update_plan_follows_descriptor_changes() -> None:
    """A layout that stays while the descriptor behind it changes: new shape,
    new dtype, a value now too short (an error), then fine again."""
    group = spead2.ItemGroup()
    values = [bytes(range(8)), bytes(range(8, 16))]

    def update(i: int) -> dict[str, spead2.Item]:
        return group.update(_value_heap([(0x1000, values[i % 2])], [], 10 + i))

    group.update(_descriptor_heap([(0x1000, "x", (8,), ("u1", "C"))], 1))
    assert update(0)["x"].value.tolist() == list(range(8))
    assert update(1)["x"].value.tolist() == list(range(8, 16))
    group.update(_descriptor_heap([(0x1000, "x", (2, 2), (">u2", "F"))], 2))
    value = update(0)["x"].value
    assert value.dtype == np.dtype("=u2") and value.shape == (2, 2)
    assert value.T.ravel().tolist() == [0x0001, 0x0203, 0x0405, 0x0607]
    group["x"].shape = (5,)  # 10 bytes wanted, 8 received
    with pytest.raises(ValueError, match=r"^Item x has too few elements for shape \(4 < 5\)$"):
        update(1)
    group["x"].shape = (4,)
    assert update(1)["x"].value.tolist() == [0x0809, 0x0A0B, 0x0C0D, 0x0E0F]
    # Installed over version 5 at 6, then +2 per value received (not for the error).
    assert group["x"].version == 10


def test_update_plan_values_are_views_of_the_heap() -> None:
    """As the reference: an array value shares the heap's memory (no copy) and is writable."""
    group = spead2.ItemGroup()
    group.update(_descriptor_heap([(0x1000, "x", (8,), ("u1", "C"))], 1))
    heaps = [_value_heap([(0x1000, bytes([i]) * 8)], [], 2 + i) for i in range(3)]
    for heap in heaps:
        value = group.update(heap)["x"].value
        assert np.shares_memory(value, np.frombuffer(heap.payload, np.uint8))
        assert value.flags.writeable and value.tolist() == [heap.cnt - 2] * 8


@pytest.mark.usefixtures("fresh_log_limits")
def test_update_plan_unknown_id_then_descriptor(caplog: pytest.LogCaptureFixture) -> None:
    """A value without a descriptor is logged and skipped until its descriptor arrives."""
    group = spead2.ItemGroup()
    with caplog.at_level(logging.WARNING, logger="spead2"):
        assert group.update(_value_heap([(0x1000, b"\1")], [], 1)) == {}
    assert "Item with ID 0x1000 received but there is no descriptor" in caplog.text
    group.update(_descriptor_heap([(0x1000, "x", (), ("u1", "C"))], 2))
    assert group.update(_value_heap([(0x1000, b"\2")], [], 3))["x"].value == 2
    group.add_item(0x1000, "y", "d", (), dtype=">u2")  # replaced by the application
    with pytest.raises(ValueError, match=r"^Item y has too few elements for shape \(0 < 1\)$"):
        group.update(_value_heap([(0x1000, b"\3")], [], 4))
    assert group.update(_value_heap([(0x1000, b"\3\4")], [], 5))["y"].value == 0x0304


def test_update_plan_on_received_heaps(pool: spead2.ThreadPool) -> None:
    """Heaps as a stream delivers them (one packet each, made a batch at a time,
    sharing one layout): the plan gives what the general path gives, across a
    descriptor that changes mid-stream."""
    import spead2.recv

    sender = spead2.send.ItemGroup()
    out = spead2.send.BytesStream(pool, spead2.send.StreamConfig(max_packet_size=9000))
    sender.add_item(0x1000, "x", "d", (8,), dtype=np.uint8)
    sender.add_item(0x1001, "t", "d", (), format=[("u", 40)])
    out.send_heap(sender.get_heap(descriptors="all", data="none"))
    for _phase in range(2):
        for i in range(30):
            sender["x"].value = np.full(sender["x"].shape, i, sender["x"].dtype)
            sender["t"].value = i
            out.send_heap(sender.get_heap(descriptors="none", data="all"))
        sender.add_item(0x1000, "x", "changed", (4,), dtype=">u2")
        out.send_heap(sender.get_heap(descriptors="all", data="none"))
    stream = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=100))
    stream.add_buffer_reader(out.getvalue())
    heaps = list(stream)
    assert len(heaps) == 63
    assert heaps[5]._layout is heaps[6]._layout  # as the batch path shares it
    fast, general = spead2.ItemGroup(), spead2.ItemGroup()
    for heap in heaps:
        assert _outcome(fast, heap, "=") == _outcome(general, _General(heap), "=")
    assert fast["x"].value.tolist() == [29] * 4 and fast["x"].value.dtype == np.dtype("=u2")
