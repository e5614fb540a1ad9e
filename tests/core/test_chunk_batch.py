"""The chunk placer's batch path for single-packet heaps (protocols/chunk_batch.py) against the packet path.

Placements come as arrays (a vectorised place) or from a C callback called
for a run of heaps from compiled code (recv/chunk/_place_driver.py); either
way the chunks (``data``, ``present``, ``extra``), the released chunks, the
statistics (the callback's own too) and whether the placer ends blocked
must be exactly what placing packet by packet gives, also for hostile
placements: rejections, too-old and far-ahead chunks (the window moving,
the source running out of chunks), out-of-bounds and overlapping places,
extra bytes.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spead2.protocols.batch import PacketBatch
from spead2.protocols.chunk_batch import batch_rest, joined_batch, placement_of
from spead2.protocols.chunking import NOT_READY, TOO_OLD, ChunkPlacer, chunk_stream_stat_configs
from spead2.protocols.stats import HEAPS
from spead2.recv._config import StreamConfig
from tests.helpers.batch_streams import cut, single_configs, single_packet_streams, unblocker
from tests.helpers.packets import packet

numba = pytest.importorskip("numba")
scipy = pytest.importorskip("scipy")

from numba import types  # noqa: E402

from spead2.numba import intp_to_voidptr  # noqa: E402
from spead2.recv.chunk.place import make_place  # noqa: E402
from spead2.recv.numba import chunk_place_data  # noqa: E402

#: Rows of the placement table (heap cnt modulo this picks the row).
TABLE_ROWS = 64
CHUNK_DATA = 256
CHUNK_PRESENT = 8
MAX_EXTRA = 16
#: Index of the callback's own statistic (the first custom one, after the core statistics).
CALLS = 9


@numba.cfunc(
    types.void(types.CPointer(chunk_place_data), types.size_t, types.voidptr), nopython=True
)
def _table_place(data_ptr, data_size, user):  # pragma: no cover - machine code
    """Places heap ``cnt`` (item 0) as row ``cnt % TABLE_ROWS`` of the int64 table at ``user``:
    chunk_id, heap_index, heap_offset, extra_offset, extra_size; counts each call in
    statistic CALLS and writes ``cnt`` and the packet size into ``extra``."""
    data = numba.carray(data_ptr, 1)
    items = numba.carray(intp_to_voidptr(data[0].items), 1, dtype=np.int64)
    table = numba.carray(user, (TABLE_ROWS, 5), dtype=np.int64)
    stats = numba.carray(intp_to_voidptr(data[0].batch_stats), CALLS + 1, dtype=np.uint64)
    extra = numba.carray(intp_to_voidptr(data[0].extra), MAX_EXTRA, dtype=np.uint8)
    stats[CALLS] += 1
    cnt = items[0]
    row = cnt % TABLE_ROWS
    data[0].chunk_id = table[row, 0]
    data[0].heap_index = table[row, 1]
    data[0].heap_offset = table[row, 2]
    data[0].extra_offset = table[row, 3]
    data[0].extra_size = table[row, 4]
    for i in range(MAX_EXTRA):
        extra[i] = (cnt + i + data[0].packet_size) & 0xFF


class _Chunk:
    def __init__(self, chunk_id):
        self.chunk_id = chunk_id
        self.data = bytearray(CHUNK_DATA)
        self.present = bytearray(CHUNK_PRESENT)
        self.extra = bytearray(2 * MAX_EXTRA)


class _Source:
    def __init__(self, limit=None):
        self.chunks = {}
        self.released = []
        self.limit = limit

    def acquire(self, chunk_id):
        if self.limit is not None and chunk_id >= self.limit:
            return NOT_READY
        if chunk_id % 7 == 6:
            return TOO_OLD  # as a group that moved on: no chunk for that ID
        chunk = self.chunks[chunk_id] = _Chunk(chunk_id)
        return chunk

    def release(self, tail):
        self.released.append(tail)


class _ChunkConfig:
    def __init__(self, vectorised):
        self.items = [0x1]
        self.max_chunks = 2
        self.max_heap_extra = 0 if vectorised else MAX_EXTRA
        self.packet_presence_payload_size = 0


class _TablePlace:
    """A vectorised place (what the stream makes of a ``recv.BatchPlace``) reading the same table."""

    extra = memoryview(bytearray(0))

    def __init__(self, table):
        self.table = table
        self.calls = 0

    def __call__(self, packet, items):
        return placement_of(self.place_rows(np.array([items], dtype=np.int64)), 0)

    def place_rows(self, items):
        self.calls += 1
        rows = self.table[items[:, 0] % TABLE_ROWS].copy()
        rows[:, 3:] = 0  # no extra bytes from a vectorised place
        rows[rows[:, 0] < 0, 1:] = 0
        return rows.view(np.uint64)

    def take_stats(self):
        return None


def run(config_args, packets, batches, table, kind, limit=None, grow=0):
    """Place ``packets`` one by one (``batches`` None) or in ``batches``; ``kind`` is
    "c" (the C callback through ctypes, heap by heap), "driver" (the same callback
    from compiled code for runs of heaps) or "vector"."""
    config = StreamConfig(**{**config_args, "allow_unsized_heaps": False})
    assert config.add_stat("calls") == CALLS
    stats = [0] * len(chunk_stream_stat_configs(config))
    source = _Source(limit)
    table_array = np.ascontiguousarray(table, dtype=np.int64)
    if kind == "vector":
        place = _TablePlace(table_array)
    else:
        callable_ = scipy.LowLevelCallable(
            _table_place.ctypes, user_data=ctypes.c_void_p(table_array.ctypes.data),
            signature="void (void *, size_t, void *)",
        )
        place = make_place(tuple(callable_), 1, len(stats), MAX_EXTRA)
        if kind == "c":
            place.place_run = None
        else:
            assert place.place_run is not None  # numba is loaded: the compiled loop is used
    placer = ChunkPlacer(config, _ChunkConfig(kind == "vector"), place, source, stats)
    unblock = unblocker(placer, source, grow)
    for item in (packets if batches is None else batches):
        running = placer.add_packet(item) if batches is None else placer.add_batch(item)
        placer.merge_place_stats()
        if not running or not unblock():
            break
    blocked = placer.blocked
    placer.stop()
    chunks = {i: (bytes(c.data), bytes(c.present), bytes(c.extra)) for i, c in source.chunks.items()}
    return chunks, source.released, stats, blocked


CNT_SIZE = 64  # the streams' largest heap: rows place heaps at multiples of it


@st.composite
def tables(draw):
    """Per row: a plain place (chunk cnt // 4, slot cnt % 4), or something hostile."""
    rows = []
    for row in range(TABLE_ROWS):
        kind = draw(st.sampled_from(
            ["plain"] * 6 + ["reject", "old", "far", "index", "offset", "huge", "overlap", "extra", "bad-extra"]
        ))
        chunk, slot = row // 4, row % 4
        place = [chunk, slot, slot * CNT_SIZE, 0, 0]
        if kind == "reject":
            place[0] = -1
        elif kind == "old":
            place[0] = max(chunk - 3, 0)
        elif kind == "far":
            place[0] = chunk + draw(st.integers(2, 9))
        elif kind == "index":
            place[1] = CHUNK_PRESENT + draw(st.integers(0, 3))
        elif kind == "offset":
            place[2] = CHUNK_DATA - draw(st.integers(0, 20))
        elif kind == "huge":
            place[2] = -draw(st.integers(1, 50))  # near 2**64 as size_t
        elif kind == "overlap":
            place[2] = draw(st.integers(0, 3)) * CNT_SIZE + draw(st.integers(1, 40))
        elif kind == "extra":
            place[3] = draw(st.integers(0, MAX_EXTRA))
            place[4] = draw(st.integers(1, MAX_EXTRA))
        elif kind == "bad-extra":
            place[3] = draw(st.integers(0, 2 * MAX_EXTRA))
            place[4] = draw(st.integers(MAX_EXTRA - 2, MAX_EXTRA + 8))
        rows.append(place)
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    packets=single_packet_streams(),
    config_args=single_configs,
    table=tables(),
    cuts=st.lists(st.integers(1, 48), min_size=1, max_size=4),
    kind=st.sampled_from(["driver", "vector"]),
    limit=st.sampled_from([None, None, 2, 5]),
    grow=st.sampled_from([0, 1, 3]),
    stable=st.booleans(),
)
def test_batch_placement_matches_packet_path(packets, config_args, table, cuts, kind, limit, grow, stable):
    """``stable``: batches whose buffer outlives the call (the rest is queued without a copy)."""
    reference = "c" if kind == "driver" else "vector"
    expected = run(config_args, packets, None, table, reference, limit, grow)
    batches = cut(packets, cuts)
    for batch in batches:
        batch.stable = stable
    assert run(config_args, packets, batches, table, kind, limit, grow) == expected


def test_driver_calls_place_once_per_heap_in_order_and_stops_at_the_window():
    """The compiled loop fills the place data as one ctypes call does and stops after a heap
    beyond the window's head or with extra bytes."""
    table = np.zeros((TABLE_ROWS, 5), dtype=np.int64)
    table[:, 0] = np.arange(TABLE_ROWS) // 4
    table[5, 4] = 3  # extra bytes for heap 5
    callable_ = scipy.LowLevelCallable(
        _table_place.ctypes, user_data=ctypes.c_void_p(table.ctypes.data),
        signature="void (void *, size_t, void *)",
    )
    place = make_place(tuple(callable_), 1, CALLS + 1, MAX_EXTRA)
    items = np.arange(12, dtype=np.int64).reshape(12, 1)
    packets = np.full(12, 1234, dtype=np.uint64)
    sizes = np.arange(100, 112, dtype=np.uint64)
    out = np.zeros((12, 5), dtype=np.uint64)
    # Heap 4 is in chunk 1, beyond head 0: the loop stops after it.
    assert place.place_run(items, packets, sizes, 0, 12, 0, out) == 5
    assert place.take_stats()[CALLS] == 5
    assert place.place_run(items, packets, sizes, 5, 12, 1, out) == 6  # heap 5 has extra bytes
    assert list(place.extra[:3]) == [(5 + i + 105) & 0xFF for i in range(3)]
    assert place.place_run(items, packets, sizes, 6, 12, 5, out) == 12
    assert place.take_stats()[CALLS] == 7
    expected = [place(memoryview(bytes(100 + i)), [i]) for i in range(12)]
    assert [placement_of(out, i) for i in range(12)] == expected


def test_batch_rest_is_one_copy_of_the_remaining_packets_unless_the_buffer_is_stable():
    data = bytearray(b"aaaabbbcccccdd")
    batch = PacketBatch(memoryview(data), [0, 4, 7, 12], [4, 3, 5, 2])
    rest = batch_rest(batch, 1)
    kept = batch_rest(PacketBatch(batch.view, batch.starts, batch.sizes, stable=True), 2)
    assert kept.view is batch.view and kept.stable  # a stable buffer is not copied
    assert [bytes(p) for p in kept] == [b"ccccc", b"dd"]
    data[:] = bytes(len(data))  # the reader reuses its buffer
    assert [bytes(p) for p in rest] == [b"bbb", b"ccccc", b"dd"]
    assert [bytes(p) for p in joined_batch([b"xy", b"z"])] == [b"xy", b"z"]


@pytest.mark.parametrize("kind", ["driver", "vector"])
def test_plain_stream_of_full_heaps_written_in_stretches(kind):
    """Heaps filling their slots back to back (what instruments send): every heap lands,
    as packet by packet; most of them through the one-copy-per-stretch path."""
    packets = [packet(cnt, CNT_SIZE, 0, bytes((cnt + i) % 251 for i in range(CNT_SIZE))) for cnt in range(1, 60)]
    table = [[row // 4, row % 4, (row % 4) * CNT_SIZE, 0, 0] for row in range(TABLE_ROWS)]
    reference = "c" if kind == "driver" else "vector"
    expected = run({}, packets, None, table, reference)
    got = run({}, packets, cut(packets, [24]), table, kind)
    assert got == expected
    chunks, _, stats, _ = got
    assert stats[HEAPS] == 59
    assert all(present == b"\1" * 4 + bytes(4) for _, present, _ in list(chunks.values())[1:-1])
