"""Adversarial inputs (issue #7): each is dropped and counted, or a ValueError naming the problem.

Cases already covered elsewhere are not repeated here: malformed packets of
every kind (tests/core/test_assembler.py ``HOSTILE``), heap_length 2**40-1 costing
only the bytes received, partial overlaps, hostile overlap patterns and the
range cap (test_assembler.py), garbage and mutated descriptor values
(test_descriptors.py), object/zero-sized dtypes in ``from_raw`` and hostile
numpy header text (test_items.py, test_values.py). This file adds the cases
of the issue's list those do not reach, end to end where it matters
(packets → stream or assembler → heap → ``ItemGroup.update``).
"""

from __future__ import annotations

import logging
import struct
import tracemalloc
from collections.abc import Callable, Sequence

import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.descriptors import decode_descriptors, encode_descriptor
from spead2.protocols.flavour import Flavour
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.protocols.raw_descriptor import RawDescriptor
from tests.fuzz._harness import Rig, make_rig
from tests.helpers.assembler import payload_of
from tests.helpers.packets import ITEM, addr, imm, packet, raw_descriptor, raw_packet
from tests.helpers.streams import counting_config


def rig(out_of_order: bool = False, contiguous_only: bool = False, max_heaps: int = 4) -> Rig:
    config = spead2.recv.StreamConfig(max_heaps=max_heaps, allow_out_of_order=out_of_order)
    ring = spead2.recv.RingStreamConfig(
        contiguous_only=contiguous_only, incomplete_keep_payload_ranges=True
    )
    return Rig(config, ring)


def feed(r: Rig, *packets: bytes) -> Rig:
    for p in packets:
        assert r.assembler.add_packet(p) is True
    return r


def stats(r: Rig) -> dict[str, int]:
    from spead2.protocols.assembler import stream_stat_configs
    from spead2.protocols.stats import StreamStats

    return {k: v for k, v in StreamStats(stream_stat_configs(r.config), r.stats).items() if v}


def peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def descriptor_packet(raw: RawDescriptor, hab: int = 40, bug_compat: int = 0) -> bytes:
    return encode_descriptor(raw, Flavour(4, 64, hab, bug_compat))


def make_raw(
    id: int = ITEM, name: bytes = b"x", shape=(), format=(), numpy_header: bytes = b""
) -> RawDescriptor:
    return raw_descriptor(id, name, b"adversarial", format, shape, numpy_header)


def heap_with(
    fields: list[tuple[int, bytes | int]], descriptors: Sequence[bytes] = (), hab: int = 40,
    cnt: int = 1,
) -> Heap:
    """A received heap with addressed (``bytes``) and immediate (``int``) items and descriptors.

    Sent as one packet through an assembler, so it is what a receiver builds.
    """
    body = b""
    pointers = []
    for descriptor in descriptors:
        pointers.append(addr(spead2.DESCRIPTOR_ID, len(body), hab))
        body += descriptor
    for item_id, value in fields:
        if isinstance(value, int):
            pointers.append(imm(item_id, value, hab))
        else:
            pointers.append(addr(item_id, len(body), hab))
            body += value
    r = feed(rig(), packet(cnt, len(body), 0, body, tuple(pointers), hab))
    [heap] = r.delivered
    assert isinstance(heap, Heap)
    return heap


# -- heap_length 2**40 ---------------------------------------------------------------


def test_heap_length_2_40_through_a_stream_is_incomplete_and_cheap() -> None:
    """HEAP_LENGTH = 2**40 exactly (SPEAD-64-48 can say it) with 1 KB sent: never a complete heap."""
    hab = 48
    huge = 1 << 40
    hostile = [packet(cnt, huge, (cnt * 7919) % huge, bytes(1000), hab=hab) for cnt in range(200)]
    honest = packet(1000, 5, 0, b"hello", (addr(ITEM, 0, hab),), hab=hab)
    stream = spead2.recv.Stream(
        spead2.ThreadPool(),
        counting_config(max_heaps=4, allow_out_of_order=True),
        spead2.recv.RingStreamConfig(heaps=256, contiguous_only=False),
    )
    data = b"".join(hostile) + honest
    def receive() -> None:
        stream.add_buffer_reader(data)
        for _ in stream:
            pass

    peak = peak_bytes(receive)
    stream.stop()
    stats_ = stream.stats
    assert stats_.packets == 201
    assert stats_.incomplete_heaps_evicted + stats_.incomplete_heaps_flushed == 200
    # 4 live heaps of 1 KB each, plus the ring of small records: nowhere near 2**40.
    assert peak < 4 << 20


def test_heap_length_2_40_heaps_delivered_incomplete_with_their_claims() -> None:
    hab = 48
    r = feed(
        rig(out_of_order=True, max_heaps=1),
        packet(1, 1 << 40, 0, b"abc", (imm(ITEM, 42, hab),), hab=hab),
        packet(1, 1 << 40, (1 << 40) - 3, b"xyz", hab=hab),
        packet(2, 3, 0, b"ok!", (addr(ITEM, 0, hab),), hab=hab),
    )
    r.assembler.flush(True)
    # A one-packet heap never evicts a live one: heap 2 comes first, heap 1 at the flush.
    second, first = r.delivered
    assert isinstance(first, IncompleteHeap)
    assert (first.heap_length, first.received_length) == (1 << 40, 6)
    assert first.payload_ranges == [(0, 3), ((1 << 40) - 3, 1 << 40)]
    assert [(item.id, item.immediate_value) for item in first.get_items()] == [(ITEM, 42)]
    assert isinstance(second, Heap) and bytes(second.payload) == b"ok!"


# -- payload offset past heap_length -----------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "length", "valid"),
    [
        (1 << 39, 100, False),  # far past the end, with payload
        (101, 100, False),  # one past the end, zero-length payload
        (100, 100, True),  # exactly at the end, zero-length: a valid no-op packet
        (96, 100, False),  # starts inside, runs past the end
        ((1 << 40) - 1, 100, False),  # the largest offset the field holds
    ],
)
def test_payload_offset_past_heap_length(offset: int, length: int, valid: bool) -> None:
    payload = b"" if offset >= length else b"12345"
    r = rig(out_of_order=True)
    feed(r, packet(1, length, 0, bytes(range(50))), packet(1, length, offset, payload))
    feed(r, packet(1, length, 50, bytes(range(50, 100))))
    [heap] = r.delivered
    assert isinstance(heap, Heap) and bytes(heap.payload) == bytes(range(100))
    assert stats(r).get("invalid_packets", 0) == (0 if valid else 1)


def test_unsized_heap_then_heap_length_below_received_offset_is_rejected() -> None:
    r = rig(out_of_order=True)
    feed(r, packet(1, None, 1000, b"late"), packet(1, 10, 0, bytes(10)))
    r.assembler.flush(True)
    [heap] = r.delivered
    # The heap never takes a HEAP_LENGTH smaller than what it already holds.
    assert isinstance(heap, IncompleteHeap) and heap.heap_length == -1
    assert heap.received_length == 4


# -- overlapping and duplicated payload (out-of-order mode) -----------------------------


def test_duplicate_storm_completes_once_and_stays_correct() -> None:
    payload = bytes(range(200))
    a = packet(7, 200, 0, payload[:100], (addr(ITEM, 0),))
    b = packet(7, 200, 100, payload[100:])
    r = rig(out_of_order=True)
    feed(r, *([a] * 500), b, *([b] * 500), *([a] * 500))
    r.assembler.flush(True)
    # The first copy of ``b`` after completion starts a new heap for cnt 7, which the
    # next ``a`` completes again; the copy of ``a`` after that starts a third, flushed
    # incomplete. Two exact heaps, never a mixed or short one.
    complete, again, partial = r.delivered
    assert payload_of(complete) == payload_of(again) == payload
    assert isinstance(partial, IncompleteHeap) and partial.payload_ranges == [(0, 100)]
    assert stats(r) == {"packets": 1501, "heaps": 3, "incomplete_heaps_flushed": 1}


def test_conflicting_exact_duplicate_keeps_the_first_bytes() -> None:
    r = rig(out_of_order=True)
    feed(
        r,
        packet(3, 8, 0, b"AAAA"),
        packet(3, 8, 0, b"BBBB"),  # same range, other bytes: adds nothing, ignored
        packet(3, 8, 4, b"CCCC"),
    )
    [heap] = r.delivered
    assert payload_of(heap) == b"AAAACCCC"


def test_overlaps_never_leave_unsent_bytes() -> None:
    """Every byte of the completed heap was sent for that position by some packet."""
    r = rig(out_of_order=True)
    pieces = [(0, b"0123"), (2, b"2345"), (6, b"67"), (1, b"1234567"), (8, b"89")]
    feed(r, *(packet(4, 10, off, data) for off, data in pieces))
    [heap] = r.delivered
    assert payload_of(heap) == b"0123456789"


# -- zero-length payload -------------------------------------------------------------


def test_zero_length_packets_never_complete_or_corrupt_a_heap() -> None:
    r = rig(out_of_order=True)
    feed(
        r,
        packet(1, 6, 3, b""),
        packet(1, 6, 0, b"abc"),
        packet(1, 6, 6, b""),
        packet(1, 6, 2, b""),
    )
    assert r.delivered == []
    feed(r, packet(1, 6, 3, b"def"))
    [heap] = r.delivered
    assert payload_of(heap) == b"abcdef"


def test_zero_length_packet_storm_is_bounded_and_counted() -> None:
    huge = (1 << 40) - 1
    packets = [packet(cnt, huge, huge, b"") for cnt in range(5000)]
    r = rig(out_of_order=True, contiguous_only=True, max_heaps=8)

    def run() -> None:
        feed(r, *packets)

    assert peak_bytes(run) < 1 << 20
    assert stats(r) == {"packets": 5000, "heaps": 4992, "incomplete_heaps_evicted": 4992}
    assert r.delivered == []


@pytest.mark.parametrize("out_of_order", [False, True])
def test_repeated_zero_length_packets_keep_memory_bounded(out_of_order: bool) -> None:
    pointers = [imm(ITEM + i, i) for i in range(100)]
    copy = packet(1, 1000, 0, b"", tuple(pointers))
    r = feed(rig(out_of_order=out_of_order), copy)

    def run() -> None:
        for _ in range(5000):
            r.assembler.add_packet(copy)

    assert peak_bytes(run) < 1 << 20
    r.assembler.flush(True)
    [heap] = r.delivered
    assert len(heap.get_items()) == 100


def test_zero_length_heap_with_item_pointers_has_no_addressed_values() -> None:
    r = feed(rig(), packet(9, 0, 0, b"", (addr(ITEM, 0), imm(ITEM + 1, 5))))
    [heap] = r.delivered
    assert isinstance(heap, Heap)
    assert [(i.id, i.is_immediate) for i in heap.get_items()] == [(ITEM + 1, True)]
    group = spead2.ItemGroup()
    group.add_item(ITEM, "arr", "", (None,), format=[("u", 8)])
    group.add_item(ITEM + 1, "n", "", (), format=[("u", 40)])
    assert set(group.update(heap)) == {"n"}
    assert group["n"].value == 5 and group["arr"].value is None


# -- the maximum number of item pointers --------------------------------------------------


def _max_pointer_packet(hab: int = 40) -> tuple[bytes, list[int]]:
    n_items = 65535 - 4
    body = bytes(range(256)) * 4
    pointers = [addr(ITEM + (i % 1024), i % len(body), hab) for i in range(n_items)]
    return packet(1, len(body), 0, body, tuple(pointers), hab), pointers


def test_maximum_item_pointers_assemble_exactly() -> None:
    data, pointers = _max_pointer_packet()
    assert struct.unpack_from(">H", data, 6) == (65535,)
    r = feed(rig(), data)
    [heap] = r.delivered
    assert isinstance(heap, Heap)
    items = heap.get_items()
    # 1024 distinct (id, address) pointers: each value runs to the next address.
    assert len(items) == 1024
    assert [(item.id, bytes(item)) for item in items[:2]] == [(ITEM, b"\0"), (ITEM + 1, b"\1")]


def test_maximum_item_pointers_through_streams() -> None:
    data, _ = _max_pointer_packet()
    assert len(data) > 65536 * 8
    # A buffer reader frames it like any other packet.
    stream = spead2.recv.Stream(spead2.ThreadPool(), counting_config())
    stream.add_buffer_reader(data)
    [heap] = list(stream)
    assert len(heap.get_items()) == 1024
    # TCP readers refuse packets over max_size: dropped and counted.
    stream = spead2.recv.Stream(spead2.ThreadPool(), counting_config())
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    stream.add_tcp_reader(listener, max_size=65536)
    with socket.create_connection(listener.getsockname()) as sender:
        sender.sendall(data + packet(2, 2, 0, b"ok"))
    heaps = list(stream)
    listener.close()
    assert [payload_of(h) for h in heaps] == [b"ok"]
    assert stream.stats["invalid_packets"] == 1


def test_maximum_item_pointers_all_one_word() -> None:
    word = imm(ITEM, 77)
    r = feed(rig(), packet(1, 0, 0, b"", (word,) * 65531))
    [heap] = r.delivered
    assert [(i.id, i.immediate_value) for i in heap.get_items()] == [(ITEM, 77)]


# -- descriptors nested inside descriptors -------------------------------------------------


def test_descriptor_inside_a_descriptor_is_not_a_descriptor() -> None:
    inner = descriptor_packet(make_raw(ITEM + 1, b"inner", format=[("u", 8)]))
    outer = bytearray(descriptor_packet(make_raw(ITEM, b"outer", format=[("u", 8)])))
    # Add a DESCRIPTOR_ID pointer to the outer nested packet, addressing the inner descriptor
    # appended to its payload.
    n = struct.unpack_from(">H", outer, 6)[0]
    pointers = list(struct.unpack_from(f">{n}Q", outer, 8))
    body = bytes(outer[8 + 8 * n :])
    pointers[1] = imm(2, len(body) + len(inner))
    pointers[3] = imm(4, len(body) + len(inner))
    pointers.append(addr(spead2.DESCRIPTOR_ID, len(body)))
    value = raw_packet(pointers, body + inner)
    found = decode_descriptors(value, 0)
    assert [(raw.id, raw.name) for raw in found] == [(ITEM, b"outer")]
    group = spead2.ItemGroup()
    group.update(heap_with([], [value]))
    assert list(group.keys()) == ["outer"]


def test_deeply_nested_descriptor_packets_do_not_recurse() -> None:
    value = descriptor_packet(make_raw(ITEM, b"core", format=[("u", 8)]))
    for _ in range(300):
        # Each level is a descriptor (ID 5) whose name is the whole level below.
        value = raw_packet(
            [imm(1, 1), imm(2, len(value)), imm(3, 0), imm(4, len(value)), imm(0x14, 5),
             addr(0x10, 0)],
            value,
        )
    found = decode_descriptors(value, 0)
    # Only the outermost packet is read as a descriptor; its "name" is the nested bytes.
    assert [raw.id for raw in found] == [5]
    assert len(found[0].name) == len(value) - 8 - 6 * 8


def test_several_top_level_descriptors_in_one_heap() -> None:
    values = [
        descriptor_packet(make_raw(ITEM + i, f"d{i}".encode(), format=[("u", 8)]))
        for i in range(50)
    ]
    group = spead2.ItemGroup()
    group.update(heap_with([], values))
    assert len(group) == 50


# -- numpy headers: object dtypes and huge shapes --------------------------------------------


def _header(descr: str, shape: str, fortran: bool = False) -> bytes:
    return f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}}}".encode()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (_header("'|O'", "(2,)"), "Cannot use dtype that has reference-counted objects"),
        (_header("[('a', '<u4'), ('b', '|O')]", "()"),
         "Cannot use dtype that has reference-counted objects"),
        (_header("[('a', '|O', (3,))]", "()"), "Cannot use dtype that has reference-counted objects"),
        (_header("'<u1'", f"({10**30},)"),
         f"Item x has too few elements for shape (8 < {10**30})"),
        (_header("'<u1'", f"({2**40}, {2**40})"),
         f"Item x has too few elements for shape (8 < {2**80})"),
        (_header("'<u1'", f"(0, {10**30})"), "Maximum allowed dimension exceeded"),
        (_header("'<u1'", f"(0, {2**62}, {2**62})"), "array is too big"),
        (_header("'<u1'", "(" + "1, " * 70 + ")"), "maximum supported dimension"),
        (_header("'|V1099511627776'", "()"), "descr is not a valid dtype descriptor"),
        (_header(f"[('a', '<u1', ({2**40},))]", "()"), "descr is not a valid dtype descriptor"),
    ],
)
def test_hostile_numpy_headers_are_value_errors(header: bytes, message: str) -> None:
    heap = heap_with([(ITEM, bytes(8))], [descriptor_packet(make_raw(numpy_header=header))])
    group = spead2.ItemGroup()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        group.update(heap)


def test_huge_shape_with_no_elements_decodes_to_an_empty_array() -> None:
    header = _header("'<u1'", f"({2**40}, 0)", fortran=True)
    heap = heap_with([(ITEM, b"junk")], [descriptor_packet(make_raw(numpy_header=header))])
    group = spead2.ItemGroup()
    group.update(heap)
    value = group["x"].value
    assert value.shape == (2**40, 0) and value.size == 0


def test_huge_format_shape_is_a_value_error() -> None:
    # SPEAD-64-56 shape entries are 7 bytes wide: the largest claims 2**56-1 elements.
    raw = make_raw(0x40, shape=[2**56 - 1], format=[("u", 8)])
    heap = heap_with([(0x40, bytes(100))], [descriptor_packet(raw, hab=56)], hab=56)
    with pytest.raises(ValueError, match=rf"too few elements for shape \(100 < {2**56 - 1}\)"):
        spead2.ItemGroup().update(heap)


# -- format fields of width 0 or absurd widths ---------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "shape", "message"),
    [
        ([("u", 0)], (), "zero-length field (bug_compat mismatch?)"),
        ([("u", 8), ("i", 0)], (4,), "zero-length field (bug_compat mismatch?)"),
        ([("f", 1 << 20)], (None,), "illegal format (f, 1048576)"),
        ([("c", 0)], (None,), "zero-length field (bug_compat mismatch?)"),
        ([("c", 16)], (None,), "illegal format (c, 16)"),
        ([("u", (1 << 24) - 1)], (), "Item x has too few elements for shape (0 < 1)"),
        ([("i", (1 << 24) - 1)], (3,), "Item x has too few elements for shape (0 < 3)"),
    ],
)
def test_hostile_format_widths(fmt, shape, message: str) -> None:
    heap = heap_with([(ITEM, bytes(64))], [descriptor_packet(make_raw(shape=shape, format=fmt))])
    with pytest.raises(ValueError) as info:
        spead2.ItemGroup().update(heap)
    assert str(info.value) == message


def test_absurd_width_in_the_widest_format_field() -> None:
    # SPEAD-64-8: format bit counts are 7 bytes wide, up to 2**56-1 bits per field.
    raw = make_raw(0x10, shape=(None,), format=[("u", 2**56 - 1)])
    heap = heap_with([(0x10, bytes(64))], [descriptor_packet(raw, hab=8)], hab=8)
    group = spead2.ItemGroup()
    group.update(heap)
    # Not even one element fits in 64 bytes: an empty array, not garbage.
    assert group.values().__iter__().__next__().value.shape == (0,)




def test_absurd_signed_width_decodes_to_an_empty_array() -> None:
    raw = make_raw(0x10, shape=(None,), format=[("i", 2**56 - 1)])
    heap = heap_with([(0x10, bytes(64))], [descriptor_packet(raw, hab=8)], hab=8)
    group = spead2.ItemGroup()
    group.update(heap)
    assert group[0x10].value.shape == (0,)


def test_wide_signed_field_costs_no_memory_without_elements() -> None:
    # SPEAD-64-24: format bit counts are 5 bytes wide.
    raw = make_raw(0x1000, shape=(None, 2), format=[("u", 8), ("i", 1 << 28)])
    heap = heap_with([(0x1000, bytes(64))], [descriptor_packet(raw, hab=24)], hab=24)
    group = spead2.ItemGroup()
    assert peak_bytes(lambda: group.update(heap)) < 4 << 20
    assert group[0x1000].value.shape == (0, 2)


def test_wide_but_plausible_width_decodes_exactly() -> None:
    value = (1 << 999) | 12345
    heap = heap_with(
        [(ITEM, value.to_bytes(125))], [descriptor_packet(make_raw(format=[("u", 1000)]))]
    )
    group = spead2.ItemGroup()
    group.update(heap)
    assert group["x"].value == value


# -- immediate items where addresses are expected, and the reverse ----------------------------


def test_array_item_sent_as_immediate_is_too_short() -> None:
    raw = make_raw(shape=(4,), numpy_header=_header("'<u4'", "(4,)"))
    heap = heap_with([(ITEM, 0x123456)], [descriptor_packet(raw)])
    with pytest.raises(ValueError, match=r"^Item x has too few elements for shape \(1 < 4\)$"):
        spead2.ItemGroup().update(heap)


@pytest.mark.parametrize("immediate", [False, True])
def test_scalar_u40_immediate_or_addressed(immediate: bool) -> None:
    raw = make_raw(format=[("u", 40)])
    value = 0x0123456789
    field = value if immediate else value.to_bytes(5)
    group = spead2.ItemGroup()
    group.update(heap_with([(ITEM, field)], [descriptor_packet(raw)]))
    assert group["x"].value == value


def test_u8_scalar_takes_the_right_end() -> None:
    raw = make_raw(format=[("u", 8)])
    group = spead2.ItemGroup()
    group.update(heap_with([(ITEM, 0x0102030405)], [descriptor_packet(raw)]))
    assert group["x"].value == 0x05  # immediates are right-aligned
    group.update(heap_with([(ITEM, b"\x0a\x0b\x0c")], []))
    assert group["x"].value == 0x0A  # addressed values start at their address


def test_immediate_descriptor_pointer_is_ignored() -> None:
    heap = heap_with([(spead2.DESCRIPTOR_ID, 0x1234), (ITEM, 7)])
    assert heap.get_descriptors() == []
    assert [i.id for i in heap.get_items()] == [ITEM]


def test_addressed_stop_item_does_not_stop() -> None:
    r = rig()
    feed(
        r,
        packet(1, 4, 0, b"\0\0\0\2", (addr(spead2.STREAM_CTRL_ID, 0),)),
        packet(2, 2, 0, b"ok"),
    )
    assert not r.assembler.stopped
    first, second = r.delivered
    assert not first.is_end_of_stream()
    assert payload_of(second) == b"ok"


def test_addressed_heap_length_is_not_a_heap_length() -> None:
    # HEAP_LENGTH must be immediate; an addressed one is an ordinary (hidden) item pointer,
    # so the heap is unsized.
    r = make_rig(0x10)
    feed(r, raw_packet([imm(1, 1), addr(2, 0), imm(3, 0), imm(4, 3)], b"abc"))
    assert r.delivered == []
    r.assembler.flush(True)
    [heap] = r.delivered
    assert isinstance(heap, Heap) and bytes(heap.payload) == b"abc"
    assert heap.get_items() == []


@pytest.mark.parametrize("field", [1, 3, 4])
def test_addressed_packet_fields_drop_the_packet(field: int) -> None:
    pointers = [imm(1, 1), imm(2, 3), imm(3, 0), imm(4, 3)]
    pointers[[1, 2, 3, 4].index(field)] = addr(field, 0)
    r = feed(rig(), raw_packet(pointers, b"abc"))
    r.assembler.flush(True)
    assert r.delivered == []
    assert stats(r) == {"invalid_packets": 1}


def test_descriptor_fields_sent_as_immediates() -> None:
    # An immediate NAME is its value bytes; an addressed DESCRIPTOR_ID_ID is ignored, so
    # such a descriptor has no ID and is skipped.
    ok = raw_packet([imm(1, 1), imm(2, 0), imm(3, 0), imm(4, 0), imm(0x14, ITEM), imm(0x10, 0x41)])
    no_id = raw_packet([imm(1, 2), imm(2, 1), imm(3, 0), imm(4, 1), addr(0x14, 0), imm(0x10, 0x42)], b"\1")
    found = decode_descriptors(ok + no_id, 0)
    assert [(raw.id, raw.name) for raw in found] == [(ITEM, b"\0\0\0\0A")]


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="spead2")
