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
from spead2.protocols.chunking import NOT_READY, ChunkPlacer, chunk_stream_stat_configs
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.protocols.live_heaps import stop_words
from spead2.recv._config import RingStreamConfig, StreamConfig
from tests.helpers.packets import ITEM, addr, imm, packet, raw_packet

STOP_ID = 6


def heap_packets(cnt, size, packet_payload, hab, first_extra, sized=True):
    payload = bytes((cnt * 7 + i) % 251 for i in range(size))
    return [
        packet(
            cnt, size if sized else None, off, payload[off : off + packet_payload],
            first_extra if off == 0 else (), hab,
        )
        for off in range(0, max(size, 1), packet_payload)
    ]


@st.composite
def streams(draw):
    """A list of packets: interleaved heaps, then loss, duplication, reordering and junk."""
    n_heaps = draw(st.integers(1, 6))
    hab = draw(st.sampled_from([40, 48]))
    packet_payload = draw(st.sampled_from([8, 24, 64]))
    heaps = []
    for i in range(n_heaps):
        size = draw(st.integers(0, 12)) * packet_payload + draw(st.sampled_from([0, 0, 5]))
        extra = draw(st.sampled_from([(), (addr(ITEM, 0, hab),), (addr(ITEM, 0, hab), imm(ITEM + 1, 3, hab))]))
        heap_hab = hab if draw(st.integers(0, 9)) else 88 - hab  # sometimes another flavour
        sized = draw(st.integers(0, 9)) > 0
        heaps.append(heap_packets(i + 1, size, packet_payload, heap_hab, extra, sized))
    # Interleave: take from the heaps in a drawn order, a drawn number of packets at a time.
    packets = []
    cursors = [0] * n_heaps
    while any(c < len(h) for c, h in zip(cursors, heaps, strict=True)):
        i = draw(st.integers(0, n_heaps - 1))
        if cursors[i] >= len(heaps[i]):
            continue
        take = draw(st.integers(1, 8))
        packets += heaps[i][cursors[i] : cursors[i] + take]
        cursors[i] += take
    # Perturb.
    for _ in range(draw(st.integers(0, 6))):
        if not packets:
            break
        kind = draw(st.sampled_from(["drop", "dup", "swap", "junk", "short", "stop", "wrong-length"]))
        at = draw(st.integers(0, len(packets) - 1))
        if kind == "drop":
            del packets[at]
        elif kind == "dup":
            packets.insert(at, packets[at])
        elif kind == "swap" and at + 1 < len(packets):
            packets[at], packets[at + 1] = packets[at + 1], packets[at]
        elif kind == "junk":
            packets.insert(at, draw(st.binary(min_size=40, max_size=80)))
        elif kind == "short":
            packets.insert(at, packets[at][: draw(st.integers(0, len(packets[at])))])
        elif kind == "stop":
            packets.insert(at, packet(99, 0, 0, b"", (imm(STOP_ID, 2, hab),), hab))
        else:  # a regular-looking packet whose HEAP_LENGTH disagrees with its heap
            packets.insert(at, packet(1, 10_000, 0, b"x" * packet_payload, (), hab))
    return [p for p in packets if p]


configs = st.fixed_dictionaries({
    "max_heaps": st.integers(1, 4),
    "substreams": st.integers(1, 3),
    "allow_out_of_order": st.booleans(),
    "allow_unsized_heaps": st.booleans(),
})


def cut(packets, cuts):
    """The packets as one buffer, cut into PacketBatches at the drawn sizes."""
    data = b"".join(packets)
    view = memoryview(data)
    starts = np.cumsum([0] + [len(p) for p in packets[:-1]]).astype(np.intp)
    sizes = np.array([len(p) for p in packets], dtype=np.intp)
    batches = []
    i = 0
    k = 0
    while i < len(packets):
        n = cuts[k % len(cuts)]
        k += 1
        as_list = k % 3 == 0  # lists as well as arrays
        s, z = starts[i : i + n], sizes[i : i + n]
        batches.append(PacketBatch(view, s.tolist() if as_list else s, z.tolist() if as_list else z))
        i += n
    return batches


def heap_record(heap):
    kind = type(heap).__name__
    common = (kind, heap.cnt, heap.flavour.heap_address_bits, list(heap._raw_pointers))
    if isinstance(heap, Heap):
        # What ItemGroup.update reads too (the single-heap path shares them between heaps).
        return (*common, bytes(heap.payload), heap._pointers, list(heap._addressed()))
    assert isinstance(heap, IncompleteHeap)
    return (*common, heap.heap_length, heap.received_length, heap.payload_ranges)


def run_assembler(config_args, packets, batches):
    config = StreamConfig(**config_args)
    ring = RingStreamConfig(contiguous_only=False, incomplete_keep_payload_ranges=True)
    stats = [0] * len(stream_stat_configs(config))
    out = []
    asm = HeapAssembler(config, ring, out.append, stats)
    if batches is None:
        for p in packets:
            if not asm.add_packet(p):
                break
    else:
        for batch in batches:
            if not asm.add_batch(batch):
                break
    asm.flush(True)
    return [heap_record(h) for h in out], stats


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=streams(),
    config_args=configs,
    cuts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
)
def test_assembler_batch_path_matches_packet_path(packets, config_args, cuts):
    expected = run_assembler(config_args, packets, None)
    assert run_assembler(config_args, packets, cut(packets, cuts)) == expected


class _Chunk:
    def __init__(self, chunk_id):
        self.chunk_id = chunk_id
        self.data = bytearray(4 * 1024)
        self.present = bytearray(4 * 64)
        self.extra = None


class _Source:
    def __init__(self, limit=None):
        self.chunks = {}
        self.released = []
        self.limit = limit  # chunk IDs from here on are never ready: the placer blocks

    def acquire(self, chunk_id):
        if self.limit is not None and chunk_id >= self.limit:
            return NOT_READY
        chunk = self.chunks[chunk_id] = _Chunk(chunk_id)
        return chunk

    def release(self, tail):
        self.released.append(tail)


class _Place:
    """Heap cnt -> chunk cnt // 4, slot cnt % 4 (1 KiB each); cnt 3 is rejected."""

    extra = memoryview(bytearray(0))

    def __init__(self, pp):
        self.pp = pp

    def __call__(self, packet, items):
        cnt = items[0]
        if cnt == 3:
            return (-1, 0, 0, 0, 0)
        per_heap = 1024 // self.pp if self.pp else 1
        return (cnt // 4, (cnt % 4) * per_heap, (cnt % 4) * 1024, 0, 0)

    def take_stats(self):
        return None


class _VectorPlace(_Place):
    """The same placement, vectorised (what the stream makes of a ``recv.BatchPlace``)."""

    def __init__(self, pp):
        super().__init__(pp)
        self.calls = 0

    def place_rows(self, items):
        self.calls += 1
        rows = np.array([self(None, row) for row in items.tolist()], dtype=np.int64).reshape(len(items), 5)
        return rows.view(np.uint64)


class _ChunkConfig:
    def __init__(self, pp):
        self.items = [0x1]
        self.max_chunks = 2
        self.max_heap_extra = 0
        self.packet_presence_payload_size = pp


def run_placer(config_args, pp, packets, batches, place_class=_Place, limit=None, grow=0):
    """Place ``packets`` one by one, or ``batches``. With ``limit``, chunks from that ID on
    are not ready; with ``grow`` too, the limit grows by ``grow`` (up to 3 times) whenever
    the placer is found blocked after a packet or a batch, and the placer resumes."""
    config = StreamConfig(**{**config_args, "allow_unsized_heaps": False})
    stats = [0] * len(chunk_stream_stat_configs(config))
    source = _Source(limit)
    placer = ChunkPlacer(config, _ChunkConfig(pp), place_class(pp), source, stats)
    grows = 0

    def unblock():
        nonlocal grows
        while placer.blocked and grow and grows < 3:
            grows += 1
            source.limit += grow
            if not placer.resume():
                return False
        return True

    if batches is None:
        for p in packets:
            if not placer.add_packet(p) or not unblock():
                break
    else:
        for batch in batches:
            if not placer.add_batch(batch) or not unblock():
                break
    blocked = placer.blocked
    placer.stop()
    chunks = {i: (bytes(c.data), bytes(c.present)) for i, c in source.chunks.items()}
    return chunks, source.released, stats, blocked


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


STREAM_CTRL = 6
CTRL_START = 0
CTRL_STOP = 2


@st.composite
def single_packet_streams(draw):
    """Mostly single-packet heaps of one layout, with hostile look-alikes mixed in.

    The look-alikes share the layout (so only their values tell them apart):
    a payload offset, a heap length other than the payload's, a size other
    than header + payload, a stop item in an immediate, an address beyond
    the heap, a cnt whose heap is live (a multi-packet heap interleaved),
    another flavour, duplicates, reordering, loss and junk.
    """
    hab = draw(st.sampled_from([40, 48]))
    size = draw(st.sampled_from([0, 8, 13, 64]))
    layouts = [
        lambda cnt: (),
        lambda cnt: (addr(ITEM, 0, hab),),
        lambda cnt: (addr(ITEM, 0, hab), imm(ITEM + 1, cnt * 3, hab)),
        lambda cnt: (imm(STREAM_CTRL, CTRL_START, hab), addr(ITEM, 0, hab), addr(ITEM + 2, size // 2, hab)),
        lambda cnt: (imm(ITEM + 1, 7, hab), imm(ITEM + 1, cnt, hab)),
    ]
    extra = draw(st.sampled_from(layouts))
    n = draw(st.integers(8, 40))
    cnts = list(range(1, n + 1))
    if draw(st.booleans()):
        cnts = [c // 2 + 1 for c in cnts]  # each cnt twice
    packets = [packet(c, size, 0, bytes((c + i) % 251 for i in range(size)), extra(c), hab) for c in cnts]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(
            ["offset", "length", "size", "stop", "address", "live", "flavour", "dup", "drop", "swap", "junk"]
        ))
        at = draw(st.integers(0, len(packets) - 1))
        c = 1000 + at
        payload = bytes(size)
        if kind == "offset":
            packets[at] = packet(c, size + 8, 8, payload, extra(c), hab)
        elif kind == "length":
            packets[at] = packet(c, size + 5, 0, payload, extra(c), hab)
        elif kind == "size":
            packets[at] = packets[at] + b"\0" * draw(st.sampled_from([1, 8]))
        elif kind == "stop":
            words = [imm(STREAM_CTRL, CTRL_STOP, hab) if w == imm(STREAM_CTRL, CTRL_START, hab) else w
                     for w in extra(c)] or [imm(STREAM_CTRL, CTRL_STOP, hab)]
            packets[at] = packet(c, size, 0, payload, tuple(words), hab)
        elif kind == "address":
            words = [addr(ITEM, size + 1, hab) if w == addr(ITEM, 0, hab) else w for w in extra(c)]
            packets[at] = packet(c, size, 0, payload, tuple(words) or (addr(ITEM, size + 1, hab),), hab)
        elif kind == "live":
            # The first half of heap c (now live), later a packet of the layout claiming c whole.
            packets.insert(at, packet(c, 2 * size + 2, 0, payload, extra(c), hab))
            later = draw(st.integers(at + 1, len(packets)))
            packets.insert(later, packet(c, size, 0, payload, extra(c), hab))
        elif kind == "flavour":
            packets[at] = packet(c, size, 0, payload, (), 88 - hab)
        elif kind == "dup":
            packets.insert(at, packets[at])
        elif kind == "drop" and len(packets) > 1:
            del packets[at]
        elif kind == "swap" and at + 1 < len(packets):
            packets[at], packets[at + 1] = packets[at + 1], packets[at]
        elif kind == "junk":
            packets.insert(at, draw(st.binary(min_size=40, max_size=80)))
    return packets


single_configs = st.fixed_dictionaries({
    "max_heaps": st.integers(1, 4),
    "substreams": st.integers(1, 3),
    "allow_out_of_order": st.booleans(),
    "allow_unsized_heaps": st.booleans(),
    "stop_on_stop_item": st.booleans(),
})


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
    place_class = _VectorPlace if vectorised else _Place
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
