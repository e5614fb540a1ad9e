"""The batch path (spead2/protocols/batch.py, LiveHeapMachine.add_batch) against the packet path.

The packet path (``add_packet``, one packet at a time) defines correct
behaviour; ``add_batch`` must give identical heaps, identical incomplete
heaps, identical chunk contents and identical statistics for any stream:
flavours, packet sizes, loss, reordering, duplication, interleaved heaps,
substreams, stop items and hostile packets, cut into batches anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spead2.protocols.assembler import HeapAssembler, stream_stat_configs
from spead2.protocols.batch import (
    MIN_VECTOR_BATCH,
    PacketBatch,
    equal_packets,
    framed_like,
    immediate_values,
    packets_like,
    regular_runs,
    run_rows,
    same_size_packets,
    single_packet_heaps,
)
from spead2.protocols.live_heaps import stop_words
from spead2.recv._config import RingStreamConfig, StreamConfig
from tests.helpers.batch_streams import (
    CTRL_START,
    CTRL_STOP,
    STREAM_CTRL,
    FourPerChunkPlace,
    VectorFourPerChunkPlace,
    configs,
    cut,
    heap_packets,
    run_assembler,
    run_placer,
    single_configs,
    single_packet_streams,
    streams,
)
from tests.helpers.packets import ITEM, addr, imm, packet, raw_packet


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=streams(),
    config_args=configs,
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
)
def test_assembler_batch_path_matches_packet_path(packets, config_args, cuts):
    expected = run_assembler(config_args, packets, None)
    assert run_assembler(config_args, packets, cut(packets, cuts)) == expected




@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=streams(),
    config_args=configs,
    pp=st.sampled_from([0, 8]),
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
)
def test_placer_batch_path_matches_packet_path(packets, config_args, pp, cuts):
    expected = run_placer(config_args, pp, packets, None)
    assert run_placer(config_args, pp, packets, cut(packets, cuts)) == expected




@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=single_packet_streams(),
    config_args=single_configs,
    cuts=st.lists(st.integers(1, 48), min_size=1, max_size=4),
)
def test_single_packet_heaps_batch_path_matches_packet_path(packets, config_args, cuts):
    expected = run_assembler(config_args, packets, None)
    assert run_assembler(config_args, packets, cut(packets, cuts)) == expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=single_packet_streams(),
    config_args=single_configs,
    pp=st.sampled_from([0, 8]),
    cuts=st.lists(st.integers(1, 48), min_size=1, max_size=4),
    vectorised=st.booleans(),
    limit=st.sampled_from([None, None, 2, 5]),
    grow=st.sampled_from([0, 1, 2]),
)
def test_single_packet_heaps_placer_batch_path_matches_packet_path(
    packets, config_args, pp, cuts, vectorised, limit, grow
):
    """Also with a source that runs out of chunks (the placer blocks and queues the rest),
    and then supplies more (the placer resumes with what it queued)."""
    expected = run_placer(config_args, pp, packets, None, limit=limit, grow=grow)
    place_class = VectorFourPerChunkPlace if vectorised else FourPerChunkPlace
    assert run_placer(config_args, pp, packets, cut(packets, cuts), place_class, limit, grow) == expected


# -- the pieces ----------------------------------------------------------------------------


def test_single_packet_heaps_found_in_one_pass():
    hab = 48

    def pointers(address, value, ctrl=CTRL_START):
        return (addr(ITEM, address, hab), imm(ITEM + 1, value, hab), imm(STREAM_CTRL, ctrl, hab))

    packets = [packet(c, 16, 0, bytes([c]) * 16, pointers(0, c), hab) for c in range(12)]
    packets[3] = packet(3, 32, 0, b"x" * 16, pointers(0, 3), hab)  # heap longer than the packet
    packets[5] = packet(5, 16, 0, b"x" * 16, pointers(4, 5), hab)  # another address
    packets[7] = packet(7, 16, 0, b"x" * 16, pointers(0, 7)[::-1], hab)  # another order
    packets[9] = packet(9, 16, 0, b"x" * 16, pointers(0, 9, CTRL_STOP), hab)
    [batch] = cut(packets, [len(packets)])
    found = single_packet_heaps(batch, stop_words(True))
    assert found is not None
    assert found.fast == [i not in (3, 5, 7, 9) for i in range(12)]
    assert found.count == 8 and found.hab == hab and found.shared is None  # the immediates differ
    assert found.cnt[:3] == [0, 1, 2] and found.length[0] == 16
    payloads = [bytes(batch.view[a:b]) for a, b in zip(found.payload_start, found.payload_end, strict=True)]
    assert payloads[:3] == [bytes([c]) * 16 for c in range(3)]
    assert found.rest[2].tolist() == list(pointers(0, 2))
    # Packet 9's stop item counts only when stop items stop the stream.
    found = single_packet_heaps(batch, None)
    assert found is not None and found.fast[9]


def test_single_packet_heaps_needs_a_majority():
    hab = 40
    same = [packet(c, 8, 0, b"abcdefgh", (addr(ITEM, 0, hab),), hab) for c in range(10)]
    [batch] = cut(same, [10])
    found = single_packet_heaps(batch, stop_words(True))
    assert found is not None and found.shared == (addr(ITEM, 0, hab),)
    [batch] = cut(same[: MIN_VECTOR_BATCH - 1], [100])
    assert single_packet_heaps(batch, None) is None
    longer = packet(99, 16, 0, b"abcdefgh", (addr(ITEM, 0, hab),), hab)
    mixed = [p if i % 2 and i != 9 else longer for i, p in enumerate(same)]
    [batch] = cut(mixed, [10])
    assert single_packet_heaps(batch, None) is None  # four of ten are too few
    [batch] = cut(mixed[:9] + same[9:], [10])
    assert single_packet_heaps(batch, None) is not None  # five of ten will do
    multi = heap_packets(5, 64 * 12, 64, hab, ())
    [batch] = cut(multi, [12])
    assert single_packet_heaps(batch, None) is None  # the template is not a whole heap


def test_packets_like_frames_equal_packets_of_any_layout():
    hab = 48
    packets = [packet(c, 16, 0, b"y" * 16, (addr(ITEM, 0, hab), imm(ITEM + 1, c, hab)), hab) for c in range(10)]
    size = len(packets[0])
    packets[6] = packet(6, 16, 0, b"y" * 16, (imm(ITEM + 1, 6, hab), addr(ITEM, 0, hab)), hab)  # same size, other IDs
    data = memoryview(b"".join(packets))
    assert packets_like(data, 0, size, 100) == 5
    k, rows = framed_like(data, 0, size, 100)  # the same count, with the template's and their header words
    assert k == 5 and rows is not None
    assert rows.tolist() == [np.frombuffer(p[:56], dtype=">u8").tolist() for p in packets[:6]]
    assert framed_like(data, 6 * size, size, 100) == (0, None)
    assert packets_like(data, 0, size, 3) == 3
    assert packets_like(data, 6 * size, size, 100) == 0  # packets 7 to 9 differ from packet 6
    assert packets_like(data[: 3 * size + 5], 0, size, 100) == 2  # packet 3 does not end in the buffer
    # Same layout, longer payload: the next packet would start elsewhere.
    packets[3] = packet(3, 24, 0, b"y" * 24, (addr(ITEM, 0, hab), imm(ITEM + 1, 3, hab)), hab)
    assert packets_like(memoryview(b"".join(packets)), 0, size, 100) == 2



def test_runs_found_and_copied_whole():
    packets = heap_packets(5, 64 * 20 + 5, 64, 40, (addr(ITEM, 0, 40),))
    [batch] = cut(packets, [len(packets)])
    found = regular_runs(batch)
    assert found is not None
    runs, starts = found
    # The first packet (more pointers) alone, the 19 equal ones, the short last one.
    assert [(r.first, r.last, r.plen) for r in runs] == [(0, 0, -1), (1, 19, 64), (20, 20, 5)]
    assert runs[1].offset == 64 and runs[1].cnt == 5 and runs[1].length == 64 * 20 + 5
    rows = run_rows(batch.view, starts, 1, 19, 64)
    assert rows is not None
    assert rows.tobytes() == b"".join(p[40:] for p in packets[1:20])


def test_small_or_runless_batches_left_to_the_packet_path():
    packets = heap_packets(5, 64 * 20, 64, 40, ())
    [batch] = cut(packets[: MIN_VECTOR_BATCH - 1], [100])
    assert regular_runs(batch) is None
    singles = [packet(cnt, 8, 0, b"abcdefgh", (), 40) for cnt in range(20)]
    [batch] = cut(singles, [100])
    assert regular_runs(batch) is None


def test_uneven_spacing_is_not_one_strided_copy():
    packets = heap_packets(5, 64 * 10, 64, 40, ())
    data = bytearray()
    starts = []
    for i, p in enumerate(packets):
        data += b"\0" * (i % 3)  # gaps of 0, 1, 2 bytes
        starts.append(len(data))
        data += p
    starts_array = np.array(starts, dtype=np.intp)
    assert run_rows(memoryview(data), starts_array, 0, 9, 64) is None
    batch = PacketBatch(memoryview(bytes(data)), starts, [len(p) for p in packets])
    assert [bytes(p) for p in batch] == packets
    assert [bytes(p) for p in batch[2:4]] == packets[2:4]


def test_same_size_packets_counts_until_the_first_other():
    packets = heap_packets(5, 64 * 10 + 3, 64, 40, (addr(ITEM, 0, 40),))
    data = memoryview(b"".join(packets))
    size = len(packets[1])
    # Packet 0 is larger (more pointers); packets 1-9 are equal; packet 10 is short.
    assert same_size_packets(data, len(packets[0]), size, 100) == 9
    assert same_size_packets(data, len(packets[0]), size, 4) == 4
    assert same_size_packets(data, 0, len(packets[0]), 5) == 0  # not a four-pointer packet
    assert same_size_packets(data[: len(packets[0]) + 3 * size + 10], len(packets[0]), size, 100) == 3


def test_equal_packets_frames_and_finds_runs_in_one_look():
    """Framing as same_size_packets; runs only where every packet is what the packet path reads."""
    plen = 24

    def heap(cnt, length, offsets, hab=40):
        return [packet(cnt, length, off, bytes(plen), (), hab) for off in offsets]

    def found(packets, index=3):
        data = memoryview(b"".join(packets))
        size = 40 + plen
        k, runs = equal_packets(data, 0, size, 100, index)
        assert k == same_size_packets(data, 0, size, 100)
        return k, [(r.first - index, r.last - index, r.cnt, r.length, r.offset, r.plen) for r in runs]

    offsets = [plen * j for j in range(10)]
    assert found(heap(7, 10 * plen, offsets)) == (10, [(0, 9, 7, 10 * plen, 0, plen)])
    assert found(heap(7, 10 * plen, offsets, hab=48)) == (10, [(0, 9, 7, 10 * plen, 0, plen)])
    # Another heap, or the same heap with another HEAP_LENGTH, or out of line: a new run.
    assert found(heap(7, 10 * plen, offsets[:4]) + heap(8, 10 * plen, offsets[4:])) == (
        10, [(0, 3, 7, 10 * plen, 0, plen), (4, 9, 8, 10 * plen, 4 * plen, plen)]
    )
    assert found(heap(7, 10 * plen, offsets[:4]) + heap(7, 11 * plen, offsets[4:]))[1] == [
        (0, 3, 7, 10 * plen, 0, plen), (4, 9, 7, 11 * plen, 4 * plen, plen)
    ]
    assert found(heap(7, 10 * plen, offsets[:4] + [p + 1 for p in offsets[4:]]))[1] == [
        (0, 3, 7, 10 * plen, 0, plen), (4, 8, 7, 10 * plen, 4 * plen + 1, plen)  # the last ends past the heap
    ]
    # Continuing past the heap's end: the run stops at it; wholly beyond: none.
    assert found(heap(7, 6 * plen, offsets))[1] == [(0, 5, 7, 6 * plen, 0, plen)]
    assert found(heap(7, 2 * plen, offsets[3:]))[1] == []
    # Reserved header bits ignored by framing, but a change of them ends a run.
    marked = [bytes([*p[:4], 0xBE, 0xEF, *p[6:]]) if i >= 5 else p for i, p in enumerate(heap(7, 10 * plen, offsets))]
    assert found(marked) == (10, [(0, 4, 7, 10 * plen, 0, plen), (5, 9, 7, 10 * plen, 5 * plen, plen)])
    # Packets framed in bulk whose first three pointers are not the fields: no run.
    for first_three in (
        lambda off: [imm(2, 10 * plen), imm(1, 7), imm(3, off)],
        lambda off: [imm(1, 7), imm(ITEM, 5), imm(3, off)],
        lambda off: [imm(1, 7), imm(2, 10 * plen), addr(3, off)],
        lambda off: [addr(1, 7), imm(2, 10 * plen), imm(3, off)],
        lambda off: [imm(1, 7), addr(2, 10 * plen), imm(3, off)],
    ):
        odd = [raw_packet([*first_three(off), imm(4, plen)], bytes(plen)) for off in offsets]
        assert found(odd) == (10, [])
    # Framing ends at the first packet of another size or layout; the template must be one.
    assert found(heap(7, 10 * plen, offsets[:6]) + [packet(7, 10 * plen, 6 * plen, bytes(plen - 8))]) == (
        6, [(0, 5, 7, 10 * plen, 0, plen)]
    )
    assert found([packet(7, 10 * plen, 0, bytes(plen - 8), (imm(ITEM, 1),)), *heap(7, 10 * plen, offsets[1:])]) == (0, [])


def test_batch_length_mismatch_rejected():
    with pytest.raises(ValueError, match="starts"):
        PacketBatch(memoryview(b""), [0, 1], [1])


def test_run_continuing_a_packet_held_aside_stays_aside():
    """Out of order, a packet far ahead is held aside; a run continuing it must not stretch the buffer."""
    config = StreamConfig(allow_out_of_order=True)
    stats = [0] * len(stream_stat_configs(config))
    asm = HeapAssembler(config, RingStreamConfig(), lambda heap: None, stats)
    length = 64 << 20
    far = 32 << 20
    packets = [
        packet(1, length, 0, b"a" * 64),
        packet(1, length, far, b"b" * 64, (imm(ITEM + 1, 3, 40),)),  # alone: more pointers
    ] + [packet(1, length, far + 64 * i, b"b" * 64) for i in range(1, 40)]  # a run continuing it
    [batch] = cut(packets, [len(packets)])
    assert asm.add_batch(batch)
    [heap] = asm._table.heaps()
    assert heap.received == 64 * 41
    assert len(heap.pending) == 40
    assert len(heap.payload) < 1 << 20


def test_immediate_values_of_a_batch():
    hab = 48
    packets = [
        packet(cnt, 64, 0, b"x" * 64, (imm(0x1600, 1000 + cnt, hab), imm(0x1600, 2000 + cnt, hab)), hab)
        for cnt in range(10)
    ] + [packet(10, 64, 0, b"y" * 64, (), hab)]
    [batch] = cut(packets, [len(packets)])
    found = immediate_values(batch, [0x1600, 1, 3, 0x1700])
    assert found is not None
    cnt, values = found
    assert cnt.tolist() == list(range(11))
    # The last occurrence wins; absent items are -1; the per-packet fields read the same way.
    assert values.tolist() == [[2000 + c, c, 0, -1] for c in range(10)] + [[-1, 10, 0, -1]]
    other_flavour = packets[:9] + [packet(9, 64, 0, b"z" * 64, (), 40)]
    [batch] = cut(other_flavour, [10])
    assert immediate_values(batch, [0x1600]) is None
