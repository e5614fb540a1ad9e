"""Property tests across the whole sans-IO core: items → packetizer → assembler → ItemGroup.

Random items, flavours and packet sizes must round-trip exactly; with
out-of-order delivery allowed, random loss, reordering and duplication must
yield either the exact heap or an IncompleteHeap, never wrong data.
"""

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.assembler import HeapAssembler, stream_stat_configs
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.send import PacketGenerator

FLAVOURS = [40, 48, 56, 32, 24]

dtypes = st.sampled_from(["u1", "<u2", ">i4", "<f8", ">f4", "<c8", "?", "i8"])
formats = st.lists(
    st.tuples(st.sampled_from("ui"), st.integers(1, 40)), min_size=1, max_size=3
)


@st.composite
def item_specs(draw):
    """(kind, type, shape, value) for one item."""
    if draw(st.booleans()):
        dtype = np.dtype(draw(dtypes))
        shape = tuple(draw(st.lists(st.integers(1, 6), max_size=2)))
        order = draw(st.sampled_from("CF"))
        size = int(np.prod(shape)) if shape else 1
        raw = draw(st.binary(min_size=size * dtype.itemsize, max_size=size * dtype.itemsize))
        value = np.frombuffer(raw, dtype).reshape(shape)
        if dtype.kind in "fc":
            value = np.nan_to_num(value)
        if dtype.kind == "b":
            value = value.astype(bool)
        return ("dtype", dtype, shape, order, value)
    fmt = draw(formats)
    shape = tuple(draw(st.lists(st.integers(1, 4), max_size=1)))
    count = int(np.prod(shape)) if shape else 1

    def field(code, bits):
        if code == "u":
            return st.integers(0, 2**bits - 1)
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    elements = [tuple(draw(field(c, b)) for c, b in fmt) for _ in range(count)]
    return ("format", fmt, shape, "C", elements)


@st.composite
def heaps(draw):
    hab = draw(st.sampled_from(FLAVOURS))
    specs = draw(st.lists(item_specs(), min_size=1, max_size=5))
    packet_size = draw(st.sampled_from([64, 100, 256, 1472, 9000]))
    return hab, specs, packet_size


def build(hab, specs):
    flavour = spead2.Flavour(4, 64, hab, 0)
    group = spead2.send.ItemGroup(flavour=flavour)
    base = 0x1000 if hab <= 48 else 0x40  # SPEAD-64-56 has 7-bit item IDs
    for i, (kind, kind_arg, shape, order, value) in enumerate(specs):
        name = f"item{i}"
        if kind == "dtype":
            group.add_item(base + i, name, "", shape, dtype=kind_arg, order=order, value=value)
        else:
            group.add_item(base + i, name, "", shape, format=kind_arg)
            array = np.empty(len(value), dtype=object)
            array[:] = [v[0] if len(v) == 1 else v for v in value]
            group[name].value = array.reshape(shape) if shape else array[0]
    return group


def assemble(packets, *, out_of_order=False, contiguous_only=True, ranges=False):
    config = spead2.recv.StreamConfig(max_heaps=4, allow_out_of_order=out_of_order)
    ring = spead2.recv.RingStreamConfig(
        contiguous_only=contiguous_only, incomplete_keep_payload_ranges=ranges
    )
    delivered = []
    stats = [0] * len(stream_stat_configs(config))
    assembler = HeapAssembler(config, ring, delivered.append, stats)
    for packet in packets:
        assembler.add_packet(packet)
    assembler.flush(deliver_incomplete=True)
    return delivered, stats


def check_values(group, received_group, specs):
    for i, (kind, _, _, _, value) in enumerate(specs):
        got = received_group[f"item{i}"].value
        if kind == "dtype":
            np.testing.assert_array_equal(np.asarray(got), value)
        else:
            assert plain(got) == plain(group[f"item{i}"].value)


def plain(value):
    """Nested lists of Python scalars, whatever mix of arrays, tuples and numpy scalars."""
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heaps())
def test_random_heaps_round_trip(spec):
    hab, specs, packet_size = spec
    group = build(hab, specs)
    packets = list(PacketGenerator(group.get_heap(descriptors="all", data="all"), 1, packet_size))
    delivered, stats = assemble(packets)
    assert len(delivered) == 1 and isinstance(delivered[0], Heap)
    assert delivered[0].flavour.heap_address_bits == hab
    received = spead2.ItemGroup()
    updated = received.update(delivered[0])
    assert set(updated) == {f"item{i}" for i in range(len(specs))}
    check_values(group, received, specs)
    assert stats[3] == len(packets)  # packets
    assert stats[0] == 1  # heaps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heaps(), st.randoms(use_true_random=False), st.floats(0, 0.5), st.floats(0, 0.5))
def test_loss_reordering_duplication_out_of_order(spec, rng: random.Random, loss, duplication):
    hab, specs, packet_size = spec
    group = build(hab, specs)
    heap = group.get_heap(descriptors="all", data="all")
    packets = list(PacketGenerator(heap, 7, packet_size))
    sent = [p for p in packets if rng.random() >= loss]
    sent += [p for p in sent if rng.random() < duplication]
    rng.shuffle(sent)
    delivered, _ = assemble(sent, out_of_order=True, contiguous_only=False, ranges=True)
    if not sent:
        assert delivered == []
        return
    everything_arrived = {bytes(p) for p in sent} == {bytes(p) for p in packets}
    if len(sent) == len({bytes(p) for p in sent}):
        assert len(delivered) == 1
    # A duplicate arriving after its heap completed starts a new heap (as in the
    # reference), so duplication may add deliveries, but never wrong data.
    assert any(isinstance(r, Heap) for r in delivered) == everything_arrived
    for result in delivered:
        assert result.cnt == 7
        if isinstance(result, Heap):
            received = spead2.ItemGroup()
            received.update(result)
            check_values(group, received, specs)
        else:
            assert isinstance(result, IncompleteHeap)
            assert result.received_length < result.heap_length
            covered = sum(end - start for start, end in result.payload_ranges)
            assert covered == result.received_length
