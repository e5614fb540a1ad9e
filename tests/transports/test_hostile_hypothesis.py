"""Hypothesis over the hostile-input surfaces: packets, assembler, descriptors, ItemGroup.update.

Inputs start as real packets from our sender (``PacketGenerator`` over
random heaps) and are then damaged: bits flipped, bytes overwritten,
pointers replaced, packets cut or extended, duplicated, reordered, and
conflicting payload for the same bytes. The properties are those of the fuzz
targets (``tests/fuzz/targets.py``, which these tests call directly) plus
one only a generator of honest traffic can state: **hostile packets for
other heaps never change an honest heap** — it arrives exact or incomplete.
(Round trips of honest traffic with loss, reordering and duplication are in
tests/core/test_roundtrip.py.)
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.protocols.packet import decode_packet
from tests.fuzz import _harness, targets

SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
FLAVOURS = [40, 48, 24, 56]


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="spead2")


# -- strategies ----------------------------------------------------------------------


@st.composite
def sent_heaps(draw: st.DrawFn, n_heaps: int = 3) -> tuple[int, spead2.send.ItemGroup, list[list[bytes]], list[dict[str, object]]]:
    """``(bits, sender group, packets per heap, values per heap)`` of honest traffic."""
    bits = draw(st.sampled_from(FLAVOURS))
    base = 0x40 if bits == 56 else 0x1000
    group = spead2.send.ItemGroup(flavour=spead2.Flavour(4, 64, bits, 0))
    size = draw(st.integers(0, 700))
    group.add_item(base, "blob", "", (size,), dtype="u1")
    group.add_item(base + 1, "n", "", (), format=[("u", 32)])
    group.add_item(base + 2, "packed", "", (None,), format=[("u", 12), ("i", 3)])
    packet_size = draw(st.sampled_from([80, 128, 512, 1472]))
    heaps: list[list[bytes]] = []
    values: list[dict[str, object]] = []
    for cnt in range(1, n_heaps + 1):
        blob = np.frombuffer(draw(st.binary(min_size=size, max_size=size)), np.uint8)
        packed = draw(st.lists(st.tuples(st.integers(0, 4095), st.integers(-4, 3)), max_size=20))
        group["blob"].value = blob
        group["n"].value = cnt * 1000
        group["packed"].value = packed
        heap = group.get_heap(descriptors="all", data="all")
        heaps.append(list(spead2.send.PacketGenerator(heap, cnt, packet_size)))
        values.append({"blob": blob.tobytes(), "n": cnt * 1000, "packed": packed})
    return bits, group, heaps, values


@st.composite
def damaged(draw: st.DrawFn, packet: bytes) -> bytes:
    """``packet`` with one kind of damage."""
    data = bytearray(packet)
    kind = draw(st.sampled_from(["flip", "byte", "pointer", "cut", "extend", "count", "junk"]))
    if kind == "flip" and data:
        position = draw(st.integers(0, len(data) - 1))
        data[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "byte" and data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif kind == "pointer" and len(data) >= 16:
        n = (len(data) - 8) // 8
        slot = draw(st.integers(0, max(0, min(n, int.from_bytes(data[6:8])) - 1)))
        data[8 + 8 * slot : 16 + 8 * slot] = draw(st.integers(0, 2**64 - 1)).to_bytes(8)
    elif kind == "cut":
        del data[draw(st.integers(0, len(data))) :]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=32))
    elif kind == "count" and len(data) >= 8:
        data[6:8] = draw(st.integers(0, 65535)).to_bytes(2)
    else:
        return draw(st.binary(max_size=120))
    return bytes(data)


def _cnt(packet: bytes) -> int | None:
    decoded = decode_packet(packet)
    return None if decoded is None else decoded[0]


# -- hostile packets never change honest heaps ------------------------------------------


@SETTINGS
@given(data=st.data(), traffic=sent_heaps())
def test_hostile_packets_never_corrupt_honest_heaps(data: st.DataObject, traffic) -> None:
    bits, _, heaps, values = traffic
    honest = [p for packets in heaps for p in packets]
    honest_cnts = set(range(1, len(heaps) + 1))
    hostile = []
    for _ in range(data.draw(st.integers(0, 30))):
        bad = data.draw(damaged(data.draw(st.sampled_from(honest))))
        # Damage that lands on an honest cnt is indistinguishable from data: leave it out.
        if _cnt(bad) not in honest_cnts:
            hostile.append(bad)
    stream = honest + hostile + data.draw(st.lists(st.sampled_from(honest), max_size=5))
    stream = data.draw(st.permutations(stream))
    max_heaps_bits = data.draw(st.sampled_from([0x10, 0x20, 0x30]))  # max_heaps 2, 4, 8
    rig = _harness.make_rig(_harness.OUT_OF_ORDER | max_heaps_bits)
    _harness.feed_and_check(rig, stream)

    receiver = spead2.ItemGroup()
    exact = 0
    for heap in rig.delivered:
        if heap.cnt not in honest_cnts or heap.flavour.heap_address_bits != bits:
            continue
        if isinstance(heap, IncompleteHeap):
            continue
        assert isinstance(heap, Heap)
        updated = receiver.update(heap)
        expected = values[heap.cnt - 1]
        if expected["blob"]:
            assert bytes(updated["blob"].value) == expected["blob"]
        assert updated["n"].value == expected["n"]
        # An empty list is a zero-length value, which a heap cannot report.
        packed = updated["packed"].value if expected["packed"] else []
        assert [tuple(map(int, v)) for v in packed] == expected["packed"]
        exact += 1
    if not hostile and max_heaps_bits == 0x30:
        # Without hostile heaps to evict them, and room for every heap in flight (3 heaps,
        # plus at most one restarted by late duplicates per cnt), every honest heap completes.
        assert exact >= len(heaps), (rig.delivered, rig.stats)


@SETTINGS
@given(
    length=st.integers(1, 200),
    pieces=st.lists(
        st.tuples(st.integers(0, 199), st.binary(min_size=0, max_size=60)), min_size=1, max_size=40
    ),
    config=st.integers(0, 255),
)
def test_conflicting_payloads_keep_byte_provenance(length: int, pieces, config: int) -> None:
    """Packets for one heap with overlapping, conflicting bytes: every delivered byte was sent."""
    from tests.helpers.packets import packet

    stream = [
        packet(5, length, offset, payload[: max(0, length - offset)])
        for offset, payload in pieces
        if offset <= length
    ]
    rig = _harness.make_rig(config)
    _harness.feed_and_check(rig, stream)  # checks provenance, stats and memory


# -- the fuzz targets, driven by hypothesis ------------------------------------------------


@SETTINGS
@given(data=st.data(), traffic=sent_heaps(n_heaps=2), config=st.integers(0, 255))
def test_assembler_target_on_damaged_traffic(data: st.DataObject, traffic, config: int) -> None:
    _, _, heaps, _ = traffic
    stream = [p for packets in heaps for p in packets]
    for _ in range(data.draw(st.integers(0, 8))):
        index = data.draw(st.integers(0, len(stream) - 1))
        stream[index] = data.draw(damaged(stream[index]))
    stream = data.draw(st.permutations(stream))
    targets.assembler(_harness.frame(stream, config))


@SETTINGS
@given(data=st.data(), traffic=sent_heaps(n_heaps=2))
def test_itemgroup_target_on_damaged_traffic(data: st.DataObject, traffic) -> None:
    _, _, heaps, _ = traffic
    stream = [p for packets in heaps for p in packets]
    for _ in range(data.draw(st.integers(0, 4))):
        index = data.draw(st.integers(0, len(stream) - 1))
        stream[index] = data.draw(damaged(stream[index]))
    targets.itemgroup(_harness.frame(stream, data.draw(st.integers(0, 127)) * 2))


@SETTINGS
@given(
    data=st.data(),
    flags=st.integers(0, 255).map(lambda v: v | 1),
    pointers=st.lists(st.integers(0, 2**64 - 1), max_size=12),
    payload=st.binary(max_size=200),
)
def test_itemgroup_target_on_raw_heaps(data: st.DataObject, flags: int, pointers, payload) -> None:
    raw = b"".join(p.to_bytes(8) for p in pointers)
    targets.itemgroup(bytes([flags, len(pointers)]) + raw + payload)


@SETTINGS
@given(data=st.data(), traffic=sent_heaps(n_heaps=1))
def test_packet_target_on_damaged_packets(data: st.DataObject, traffic) -> None:
    _, _, heaps, _ = traffic
    targets.packet(data.draw(damaged(data.draw(st.sampled_from(heaps[0])))))


@SETTINGS
@given(data=st.data(), bits=st.sampled_from([8, 16, 24, 32, 40, 48, 56]), bug_compat=st.integers(0, 7))
def test_descriptors_target_on_damaged_descriptors(data: st.DataObject, bits: int, bug_compat: int) -> None:
    from spead2.protocols.descriptors import encode_descriptor

    item = spead2.Item(
        data.draw(st.integers(0, 127)), data.draw(st.text("abc", max_size=5)), "",
        data.draw(st.sampled_from([(), (3,), (None, 2)])), format=[("u", data.draw(st.integers(1, 64)))],
    )
    value = encode_descriptor(item.to_raw(spead2.Flavour(4, 64, bits, bug_compat)),
                              spead2.Flavour(4, 64, bits, bug_compat))
    targets.descriptors(bytes([bug_compat]) + data.draw(damaged(value)))


# -- a byte stream through a real reader ----------------------------------------------------


@settings(
    max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), traffic=sent_heaps())
def test_buffer_reader_with_hostile_packets_in_the_byte_stream(
    pool: spead2.ThreadPool, data: st.DataObject, traffic
) -> None:
    """Hostile packets between honest ones in a byte stream, garbage at the end: data is exact.

    The hostile packets are well-framed (a packet cut short in a byte stream
    takes its missing bytes from the next packet, which no receiver can
    detect; TCP does not cut packets).
    """
    bits, _, heaps, values = traffic
    honest = [p for packets in heaps for p in packets]
    honest_cnts = set(range(1, len(heaps) + 1))
    stream = list(honest)
    for _ in range(data.draw(st.integers(0, 4))):
        bad = data.draw(damaged(data.draw(st.sampled_from(honest))))
        if decode_packet(bad) is not None and _cnt(bad) not in honest_cnts:
            stream.insert(data.draw(st.integers(0, len(stream))), bad)
    stream.append(data.draw(st.binary(max_size=40)))
    # Heaps sent entirely before the first hostile packet cannot be disturbed by it.
    first_hostile = next((i for i, p in enumerate(stream) if p not in honest), len(stream))
    undisturbed = {
        cnt for cnt, packets in enumerate(heaps, 1)
        if all(stream.index(p) < first_hostile for p in packets)
    }
    receiver = spead2.recv.Stream(
        pool, spead2.recv.StreamConfig(allow_out_of_order=True),
        spead2.recv.RingStreamConfig(contiguous_only=False),
    )
    receiver.add_buffer_reader(b"".join(stream))
    group = spead2.ItemGroup()
    complete = set()
    for heap in receiver:
        if not isinstance(heap, Heap) or heap.cnt not in honest_cnts:
            continue
        if heap.flavour.heap_address_bits != bits:
            continue
        updated = group.update(heap)
        expected = values[heap.cnt - 1]
        if expected["blob"]:
            assert bytes(updated["blob"].value) == expected["blob"]
        assert updated["n"].value == expected["n"]
        complete.add(heap.cnt)
    assert undisturbed <= complete
