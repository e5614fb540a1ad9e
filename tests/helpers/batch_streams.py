"""Packet streams and runners shared by the batch-path differential tests.

Hypothesis strategies for hostile packet streams (``streams``,
``single_packet_streams``) and their stream configurations, ``cut`` (the
packets as one buffer cut into ``PacketBatch``es), and runners that feed a
stream to an assembler or a chunk placer packet by packet or batch by batch
and return everything observable, so that the two paths can be compared.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import strategies as st

from spead2.protocols.assembler import HeapAssembler, stream_stat_configs
from spead2.protocols.batch import PacketBatch
from spead2.protocols.chunking import NOT_READY, ChunkPlacer, chunk_stream_stat_configs
from spead2.protocols.heaps import Heap, IncompleteHeap
from spead2.recv._config import RingStreamConfig, StreamConfig
from tests.helpers.packets import ITEM, addr, imm, packet


def unblocker(placer: ChunkPlacer, source, grow: int, max_grows: int = 3) -> Callable[[], bool]:
    """A function that, while ``placer`` is blocked, raises ``source.limit`` by ``grow``
    (up to ``max_grows`` times in all) and resumes it; it returns False once the placer stops."""
    grows = 0

    def unblock() -> bool:
        nonlocal grows
        while placer.blocked and grow and grows < max_grows:
            grows += 1
            source.limit += grow
            if not placer.resume():
                return False
        return True

    return unblock


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


class FourPerChunkPlace:
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


class VectorFourPerChunkPlace(FourPerChunkPlace):
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


def run_placer(config_args, pp, packets, batches, place_class=FourPerChunkPlace, limit=None, grow=0):
    """Place ``packets`` one by one, or ``batches``. With ``limit``, chunks from that ID on
    are not ready; with ``grow`` too, the limit grows by ``grow`` (up to 3 times) whenever
    the placer is found blocked after a packet or a batch, and the placer resumes."""
    config = StreamConfig(**{**config_args, "allow_unsized_heaps": False})
    stats = [0] * len(chunk_stream_stat_configs(config))
    source = _Source(limit)
    placer = ChunkPlacer(config, _ChunkConfig(pp), place_class(pp), source, stats)
    unblock = unblocker(placer, source, grow)

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
