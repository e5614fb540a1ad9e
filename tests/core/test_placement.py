"""Payloads received in place (spead2/protocols/placement.py, LiveHeapMachine.placement/add_placed_batch).

The plain packet path defines correct behaviour. Here a batch's datagrams
are scattered the way an aimed ``recvmmsg`` scatters them (header area into
the slot, the predicted payload bytes into the heap's buffer, the rest into
the slot after them); the leading confirmed packets are accounted for in
place, the others made whole in their slots and processed as usual. The
heaps and statistics must be exactly those of the packet path, whatever the
packets: reordered, duplicated, foreign, short, oversized or hostile.
(``tests/transports/test_udp_reader.py`` does the same over real loopback sockets.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spead2.protocols.assembler import HeapAssembler, stream_stat_configs
from spead2.protocols.batch import HEADER_SIZE, PacketBatch
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.protocols.placement import MAX_PLANNED, PlacedBatch, Placement, confirmed_count
from spead2.protocols.stats import PACKETS
from spead2.recv._config import RingStreamConfig, StreamConfig
from tests.helpers.in_order_packets import (
    ITEM,
    heap_bytes,
    heap_packets,
    hostile_streams,
    imm,
    packet,
)


def record(heap):
    kind = type(heap).__name__
    common = (kind, heap.cnt, heap.flavour.heap_address_bits, list(heap._raw_pointers))
    if isinstance(heap, Heap):
        return (*common, bytes(heap.payload))
    assert isinstance(heap, IncompleteHeap)
    return (*common, heap.heap_length, heap.received_length, heap.payload_ranges)


def assembler(config_args, out):
    config = StreamConfig(**config_args)
    ring = RingStreamConfig(contiguous_only=False, incomplete_keep_payload_ranges=True)
    stats = [0] * len(stream_stat_configs(config))
    return HeapAssembler(config, ring, out.append, stats), stats


def run_plain(config_args, packets, max_size):
    out = []
    asm, stats = assembler(config_args, out)
    for p in packets:
        if len(p) > max_size:
            continue  # the reader drops these before the core sees them
        if not asm.add_packet(p):
            break
    asm.flush(True)
    return [record(h) for h in out], stats


class AimedSlots:
    """What an aimed recvmmsg does with a batch of datagrams, in Python (see _recvmmsg.py)."""

    def __init__(self, slots, slot_size):
        self.slots = slots
        self.slot_size = slot_size
        self.buffer = bytearray(slots * slot_size)
        self.view = memoryview(self.buffer)

    def receive(self, datagrams, placement):
        """Scatter ``datagrams``; return their sizes (cut to a slot) and how many were aimed."""
        slot = self.slot_size
        aimed = 0 if placement is None else min(placement.count, self.slots)
        sizes = []
        for i, data in enumerate(datagrams):
            data = data[:slot]
            base = i * slot
            if i < aimed:
                length = int(placement.lengths[i])
                target = int(placement.offsets[i])
                head = data[:HEADER_SIZE]
                middle = data[HEADER_SIZE : HEADER_SIZE + length]
                rest = data[HEADER_SIZE + length :]
                self.buffer[base : base + len(head)] = head
                placement.buffer[target : target + len(middle)] = middle
                after = base + HEADER_SIZE + length
                self.buffer[after : after + len(rest)] = rest
            else:
                self.buffer[base : base + len(data)] = data
            sizes.append(len(data))
        return sizes, aimed

    def restore(self, first, sizes, aimed, placement):
        for i in range(first, min(aimed, len(sizes))):
            got = min(sizes[i] - HEADER_SIZE, int(placement.lengths[i]))
            if got > 0:
                start = i * self.slot_size + HEADER_SIZE
                source = int(placement.offsets[i])
                self.view[start : start + got] = placement.buffer[source : source + got]


def run_placed(config_args, packets, max_size, slots):
    """The reader's loop of udp.py over simulated aimed receives; also how many were placed."""
    out = []
    asm, stats = assembler(config_args, out)
    receiver = AimedSlots(slots, max_size + 1)
    placed_total = 0
    running = True
    for at in range(0, len(packets), slots):
        datagrams = packets[at : at + slots]
        placement = asm.placement(slots)
        sizes, aimed = receiver.receive(datagrams, placement)
        placed = 0
        if aimed:
            placed = confirmed_count(receiver.view, receiver.slot_size, sizes[:aimed], placement)
            receiver.restore(placed, sizes, aimed, placement)
        starts = [i * receiver.slot_size for i in range(placed, len(sizes)) if sizes[i] <= max_size]
        kept = [size for size in sizes[placed:] if size <= max_size]
        if aimed:
            running = asm.add_placed_batch(PlacedBatch(receiver.view, starts, kept, placement, placed))
        else:
            running = asm.add_batch(PacketBatch(receiver.view, starts, kept))
        placed_total += placed
        if not running:
            break
    asm.flush(True)
    return [record(h) for h in out], stats, placed_total


configs = st.fixed_dictionaries({
    "max_heaps": st.integers(1, 4),
    "substreams": st.integers(1, 2),
    "allow_out_of_order": st.booleans(),
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=hostile_streams(plens=[16, 40, 64]), config_args=configs, slots=st.integers(1, 24))
def test_placed_path_matches_packet_path(stream, config_args, slots):
    packets, plen = stream
    max_size = 2 * plen + 80  # the reference's max_size: longer datagrams are dropped
    expected = run_plain(config_args, packets, max_size)
    heaps, stats, _ = run_placed(config_args, packets, max_size, slots)
    assert (heaps, stats) == expected


def test_in_order_heaps_are_received_in_place():
    packets = heap_packets(1, 64 * 30, 64) + heap_packets(2, 64 * 30 + 5, 64)
    config_args = {"max_heaps": 2, "substreams": 1, "allow_out_of_order": False}
    expected = run_plain(config_args, packets, 200)
    heaps, stats, placed = run_placed(config_args, packets, 200, 8)
    assert (heaps, stats) == expected
    assert [h[0] for h in heaps] == ["Heap", "Heap"]
    # Every batch but those starting a heap (its first packet has the item pointer) is placed.
    assert placed >= len(packets) - 2 * 8
    assert stats[PACKETS] == len(packets)


def make_placement(asm, limit=8):
    placement = asm.placement(limit)
    assert placement is not None
    return placement


def test_placement_predicts_the_bytes_after_those_received():
    out = []
    asm, _ = assembler({"max_heaps": 2}, out)
    packets = heap_packets(5, 1000, 64)
    for p in packets[:3]:
        asm.add_packet(p)
    placement = make_placement(asm, 100)
    fields = (placement.cnt, placement.hab, placement.length, placement.offset, placement.plen)
    assert fields == (5, 48, 1000, 192, 64)
    assert placement.count == 13  # 808 bytes to go: 12 packets of 64 and one of 40
    assert placement.offsets.tolist() == [192 + 64 * i for i in range(13)]
    assert placement.lengths.tolist() == [64] * 12 + [40]
    assert len(placement.buffer) == 1000
    assert make_placement(asm, 4).count == 4


@pytest.mark.parametrize(
    "case",
    ["nothing yet", "unsized", "hole", "completed", "stopped", "growing buffer", "evicted"],
)
def test_no_placement_where_a_guess_could_overwrite_or_move(case):
    out = []
    args = {"max_heaps": 1, "allow_out_of_order": case == "hole", "allow_unsized_heaps": True}
    asm, _ = assembler(args, out)
    packets = heap_packets(1, 640, 64)
    if case == "unsized":
        payload = heap_bytes(1, 640)
        for off in (0, 64):
            asm.add_packet(packet(1, None, off, payload[off : off + 64]))
    elif case == "hole":
        for p in packets[:2] + packets[3:4]:
            asm.add_packet(p)
    elif case == "completed":
        for p in packets:
            asm.add_packet(p)
        assert len(out) == 1
    elif case == "stopped":
        for p in packets[:2]:
            asm.add_packet(p)
        asm.flush(False)
    elif case == "growing buffer":  # HEAP_LENGTH far beyond the bytes: the buffer doubles
        big = heap_bytes(1, 64 * 200)
        for off in (0, 64):
            asm.add_packet(packet(1, 1 << 30, off, big[off : off + 64]))
    elif case == "evicted":
        for p in packets[:2]:
            asm.add_packet(p)
        asm.add_packet(heap_packets(2, 640, 64)[0])
    assert asm.placement(8) is None


def test_placement_after_a_hole_is_filled_out_of_order():
    out = []
    asm, _ = assembler({"max_heaps": 1, "allow_out_of_order": True}, out)
    packets = heap_packets(1, 640, 64)
    for p in [packets[0], packets[2]]:
        asm.add_packet(p)
    assert asm.placement(8) is None  # a hole at 64: bytes beyond 128 are received
    asm.add_packet(packets[1])
    assert make_placement(asm).offset == 192  # one range again: the bytes after it are free
    asm.add_packet(packets[4])
    assert asm.placement(8) is None


def words_of(packets, slot):
    buffer = bytearray(slot * len(packets))
    for i, p in enumerate(packets):
        buffer[i * slot : i * slot + len(p)] = p
    return memoryview(buffer), [len(p) for p in packets]


def test_confirmed_count_stops_at_the_first_packet_not_predicted():
    out = []
    asm, _ = assembler({"max_heaps": 2}, out)
    packets = heap_packets(3, 64 * 10 + 9, 64)
    asm.add_packet(packets[0])
    asm.add_packet(packets[1])
    placement = make_placement(asm, 16)
    assert placement.count == 9
    view, sizes = words_of(packets[2:], 120)
    assert confirmed_count(view, 120, sizes, placement) == 9  # the short last one too
    pay = b"y" * 64
    variants = {
        "other heap": packet(4, 64 * 10 + 9, 64 * 4, pay),
        "other offset": packet(3, 64 * 10 + 9, 64 * 5, pay),
        "other length": packet(3, 64 * 10, 64 * 4, pay),
        "other plen": packet(3, 64 * 10 + 9, 64 * 4, pay[:60]),
        "other flavour": packet(3, 64 * 10 + 9, 64 * 4, pay, (), 40),
        "extra pointer": packet(3, 64 * 10 + 9, 64 * 4, pay, (imm(ITEM, 1, 48),)),
        "trailing byte": packet(3, 64 * 10 + 9, 64 * 4, pay) + b"\0",
    }
    for name, bad in variants.items():
        view, sizes = words_of(packets[2:4] + [bad] + packets[5:], 120)
        assert confirmed_count(view, 120, sizes, placement) == 2, name
    # A datagram shorter than a header leaves the previous header in its slot: its size tells.
    view, sizes = words_of(packets[2:5], 120)
    sizes[1] = 12
    assert confirmed_count(view, 120, sizes, placement) == 1
    # Stricter than the packet path, which ignores the header's reserved bytes:
    # such a packet is not confirmed, so it takes the plain path (and is accepted there).
    odd = bytearray(packets[2])
    odd[4:6] = b"\x12\x34"
    view, sizes = words_of([bytes(odd)], 120)
    assert confirmed_count(view, 120, sizes, placement) == 0
    assert confirmed_count(view, 120, [], placement) == 0


def test_placed_batch_must_follow_its_placement():
    out = []
    asm, _ = assembler({"max_heaps": 2}, out)
    packets = heap_packets(3, 640, 64)
    asm.add_packet(packets[0])
    asm.add_packet(packets[1])
    placement = make_placement(asm)
    asm.add_packet(packets[2])
    view = memoryview(bytearray(64))
    with pytest.raises(RuntimeError, match="moved on"):
        asm.add_placed_batch(PlacedBatch(view, [], [], placement, 1))
    with pytest.raises(ValueError, match="placed"):
        PlacedBatch(view, [], [], placement, placement.count + 1)
    with pytest.raises(ValueError, match="no packet"):
        Placement(None, bytearray(10), 1, 48, 10, 10, 4, 8)
    assert isinstance(placement.offsets, np.ndarray)


def test_a_heaps_plan_is_reused_and_bounded():
    out = []
    asm, _ = assembler({"max_heaps": 2}, out)
    packets = heap_packets(5, 64 * 100, 64)
    for p in packets[:3]:
        asm.add_packet(p)
    first = make_placement(asm, 10)
    asm.add_placed_batch(PlacedBatch(memoryview(bytearray(1)), [], [], first, 10))
    second = make_placement(asm, 10)
    assert second.plan is first.plan  # the same heap continuing: no new arrays
    assert second.offsets.tolist() == [64 * (13 + i) for i in range(10)]
    assert bytes(second.headers[0]) == packets[13][:HEADER_SIZE]
    # A huge HEAP_LENGTH with tiny payloads: the plan stops at MAX_PLANNED packets.
    huge = Placement(None, bytearray(1 << 20), 1, 48, 1 << 20, 0, 1, 1 << 30)
    assert huge.count == MAX_PLANNED == len(huge.plan.offsets)
    again = Placement(None, huge.buffer, 1, 48, 1 << 20, MAX_PLANNED - 2, 1, 8, huge.plan)
    assert again.plan is not huge.plan and again.count == 8  # beyond the old plan: a new one


# -- packets checked against the prediction after the fact (add_predicted) -------------------


def run_predicted(config_args, packets, max_size, batch_size, spacing):
    """``add_predicted`` on batches of the packets laid out in one buffer each.

    ``spacing``: back to back, evenly spaced (slots), or unevenly (so that
    the copy cannot be one strided copy).
    """
    out = []
    asm, stats = assembler(config_args, out)
    kept = [p for p in packets if len(p) <= max_size]
    for at in range(0, len(kept), batch_size):
        buffer = bytearray()
        starts, sizes = [], []
        for j, p in enumerate(kept[at : at + batch_size]):
            if spacing == "slots":
                buffer += bytes(-len(buffer) % (max_size + 8))
            elif spacing == "uneven":
                buffer += bytes(j % 3 * 5)
            starts.append(len(buffer))
            sizes.append(len(p))
            buffer += p
        batch = PacketBatch(memoryview(buffer), np.array(starts, dtype=np.intp), np.array(sizes, dtype=np.intp))
        if not asm.add_predicted(batch):
            break
    asm.flush(True)
    return [record(h) for h in out], stats


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=hostile_streams(plens=[16, 40, 64]), config_args=configs, batch_size=st.integers(1, 40),
    spacing=st.sampled_from(["back to back", "slots", "uneven"]),
)
def test_predicted_path_matches_packet_path(stream, config_args, batch_size, spacing):
    packets, plen = stream
    max_size = 2 * plen + 80
    expected = run_plain(config_args, packets, max_size)
    assert run_predicted(config_args, packets, max_size, batch_size, spacing) == expected


@pytest.mark.parametrize("spacing", ["back to back", "slots", "uneven"])
def test_in_order_heaps_are_copied_as_predicted(spacing):
    packets = heap_packets(1, 64 * 30, 64) + heap_packets(2, 64 * 30 + 5, 64)
    config_args = {"max_heaps": 2, "substreams": 1, "allow_out_of_order": False}
    expected = run_plain(config_args, packets, 200)
    out = []
    asm, stats = assembler(config_args, out)
    through_packet_path = []
    add_packet = asm.add_packet

    def counting(data):
        through_packet_path.append(bytes(data))
        return add_packet(data)

    asm.add_packet = counting
    # One batch of both heaps: the first two packets of each make the
    # prediction, the rest of each heap is one predicted run.
    buffer = bytearray()
    starts = []
    for j, p in enumerate(packets):
        buffer += bytes(-len(buffer) % 208 if spacing == "slots" else (j % 3 if spacing == "uneven" else 0))
        starts.append(len(buffer))
        buffer += p
    sizes = [len(p) for p in packets]
    assert asm.add_predicted(PacketBatch(memoryview(buffer), starts, sizes))
    asm.flush(True)
    assert ([record(h) for h in out], stats) == expected
    assert through_packet_path == [packets[0], packets[1], packets[30], packets[31]]


def test_the_next_heap_of_a_series_reuses_the_plans_arrays():
    out = []
    asm, _ = assembler({"max_heaps": 2}, out)
    # The second heap is first predicted from another offset: the plans are
    # laid out on the heap's grid of payloads, so they still have one shape.
    for cnt, known in ((1, 2), (2, 5)):
        packets = heap_packets(cnt, 64 * 20, 64)
        for p in packets[:known]:
            asm.add_packet(p)
        placement = make_placement(asm, 4)
        if cnt == 1:
            first = placement.plan
        else:
            assert placement.plan is not first
            assert placement.plan.offsets is first.offsets and placement.plan.sizes is first.sizes
        assert placement.offsets.tolist() == [64 * (known + i) for i in range(4)]
        assert [bytes(h) for h in placement.headers] == [p[:HEADER_SIZE] for p in packets[known : known + 4]]
        for p in packets[known:]:
            asm.add_packet(p)
    assert [h.cnt for h in out] == [1, 2]
