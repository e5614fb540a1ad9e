"""The reader of memory (spead2/transports/buffer.py): framing, and the runs it finds while framing.

The reader frames equal packets in bulk and, in the same look at their
headers, finds the runs the core copies whole (``equal_packets``), handing
them over with the batch. Whatever the bytes, its batches must hold exactly
the packets that framing one packet at a time finds, and the heap assembler
fed those batches must deliver what the packet path delivers from the same
packets (the packet path defines correct behaviour), with or without the
runs found while framing. For single-packet heaps, framing also hands over
the header words of the longest stretch of packets framed alike
(``framed_like``): ``single_packet_heaps`` must find from them what it
finds parsing the batch itself.
"""

from __future__ import annotations

import struct
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spead2.protocols.batch import PacketBatch, single_packet_heaps
from spead2.protocols.live_heaps import stop_words
from spead2.protocols.packet import PacketError, decode_packet, packet_size
from spead2.transports import buffer
from spead2.transports.base import GO, STOP
from tests.helpers.batch_streams import (
    CTRL_START,
    CTRL_STOP,
    STREAM_CTRL,
    configs,
    run_assembler,
    run_placer,
    single_configs,
    single_packet_streams,
    streams,
)
from tests.helpers.packets import ITEM, addr, imm, packet, raw_packet


class _Recorder:
    """A sink keeping the reader's batches."""

    def __init__(self) -> None:
        self.batches: list[PacketBatch] = []
        self.invalid = 0
        self.ended = False

    def feed(self, batch: PacketBatch) -> int:
        self.batches.append(batch)
        return GO

    def count_invalid(self, n: int = 1) -> None:
        self.invalid += n

    def stop_from_reader(self) -> None:
        self.ended = True


def read_batches(data: bytes, batch_bytes: int) -> _Recorder:
    """Every batch the reader makes of ``data``, ``batch_bytes`` at a time."""
    sink = _Recorder()
    reader = buffer.BufferReader(sink, data)  # type: ignore[arg-type]
    with mock.patch.object(buffer, "BATCH_BYTES", batch_bytes):
        while not sink.ended:
            assert reader._feed_batch() in (GO, STOP)
    return sink


def framed_one_by_one(data: bytes) -> tuple[list[bytes], int]:
    """The packets of ``data`` as ``packet_size`` frames them, and 1 if the rest was invalid."""
    view = memoryview(data)
    packets = []
    offset = 0
    while offset < len(view):
        try:
            size = packet_size(view, offset)
        except PacketError:
            size = None
        if size is None or offset + size > len(view):
            return packets, 1
        packets.append(bytes(view[offset : offset + size]))
        offset += size
    return packets, 0


@st.composite
def equal_packet_streams(draw):
    """Heaps of many equal packets, interleaved a stretch at a time, then damaged.

    The damage keeps packets the reader frames in bulk (the size and the
    header's four pointers) but breaks runs: another cnt or HEAP_LENGTH, an
    offset out of line or beyond the heap (alone, or continued), other
    pointers in the fields' places, reserved header bits, another
    flavour of the same size, duplicates, reordering, loss, junk.
    """
    hab = draw(st.sampled_from([40, 48]))
    plen = draw(st.sampled_from([8, 24, 64]))
    heaps = []
    for cnt in range(1, draw(st.integers(1, 4)) + 1):
        n = draw(st.integers(1, 30))
        length = n * plen - draw(st.sampled_from([0, 0, 3]))
        payload = bytes((cnt * 7 + i) % 251 for i in range(length))
        first = draw(st.sampled_from([(), (addr(ITEM, 0, hab),)]))
        heaps.append([
            packet(cnt, length, off, payload[off : off + plen], first if off == 0 else (), hab)
            for off in range(0, length, plen)
        ])
    packets = []
    cursors = [0] * len(heaps)
    while any(c < len(h) for c, h in zip(cursors, heaps, strict=True)):
        i = draw(st.integers(0, len(heaps) - 1))
        take = draw(st.integers(1, 40))
        packets += heaps[i][cursors[i] : cursors[i] + take]
        cursors[i] += take
    for _ in range(draw(st.integers(0, 5))):
        at = draw(st.integers(0, len(packets) - 1))
        kind = draw(st.sampled_from(
            ["cnt", "length", "offset", "beyond", "overrun", "layout", "reserved", "flavour", "dup", "swap",
             "drop", "junk"]
        ))
        if kind == "cnt":
            packets[at] = packet(99, 30 * plen, plen, bytes(plen), (), hab)
        elif kind == "length":
            packets[at] = packet(1, 31 * plen, plen, bytes(plen), (), hab)
        elif kind == "offset":
            packets[at] = packet(1, 30 * plen, 3, bytes(plen), (), hab)
        elif kind == "beyond":  # a regular-looking packet past the heap's end
            packets[at] = packet(1, 2 * plen, 2 * plen, bytes(plen), (), hab)
        elif kind == "overrun":  # packets continuing one another past their heap's end
            start = draw(st.integers(0, 3))
            packets[at:at] = [
                packet(77, 2 * plen, j * plen, bytes(plen), (), hab) for j in range(start, start + draw(st.integers(2, 6)))
            ]
        elif kind == "layout":  # continuing packets whose first three pointers are not the fields
            first_three = draw(st.sampled_from([
                lambda off: [imm(2, 30 * plen, hab), imm(1, 1, hab), imm(3, off, hab)],  # swapped
                lambda off: [imm(1, 1, hab), imm(ITEM, 5, hab), imm(3, off, hab)],  # unsized, an item
                lambda off: [imm(1, 1, hab), imm(2, 30 * plen, hab), addr(3, off, hab)],  # addressed
                lambda off: [addr(1, 1, hab), imm(2, 30 * plen, hab), imm(3, off, hab)],
            ]))
            packets[at:at] = [
                raw_packet([*first_three(j * plen), imm(4, plen, hab)], bytes(plen), hab) for j in range(1, 4)
            ]
        elif kind == "reserved":
            word = struct.unpack_from(">Q", packets[at])[0] | (0xBEEF << 16)
            packets[at] = struct.pack(">Q", word) + packets[at][8:]
        elif kind == "flavour":
            packets[at] = packet(1, 30 * plen, 0, bytes(plen), (), 88 - hab)
        elif kind == "dup":
            packets.insert(at, packets[at])
        elif kind == "swap" and at + 1 < len(packets):
            packets[at], packets[at + 1] = packets[at + 1], packets[at]
        elif kind == "drop" and len(packets) > 1:
            del packets[at]
        elif kind == "junk":
            packets.insert(at, struct.pack(">Q", imm(4, plen, hab)) * (5 + plen // 8))
    return packets


def check_reader(packets: list[bytes], config_args: dict, batch_bytes: int) -> None:
    data = b"".join(packets)
    sink = read_batches(data, batch_bytes)
    expected, invalid = framed_one_by_one(data)
    assert [bytes(p) for batch in sink.batches for p in batch] == expected
    assert sink.invalid == invalid
    for batch in sink.batches:
        for run in batch.runs or []:
            assert run.last > run.first and run.plen > 0
            for j in range(run.first, run.last + 1):
                view = batch[j]
                # Each packet of a run is what the packet path reads: only the
                # four per-packet fields, continuing the run's first.
                offset = run.offset + (j - run.first) * run.plen
                decoded = decode_packet(view)
                assert decoded == (run.cnt, run.length, offset, run.plen, run.hab, 40, ())
                assert len(view) == 40 + run.plen and offset + run.plen <= run.length
    by_packet = run_assembler(config_args, expected, None)
    assert run_assembler(config_args, expected, sink.batches) == by_packet
    without_runs = [PacketBatch(b.view, b.starts, b.sizes, b.stable) for b in sink.batches]
    assert run_assembler(config_args, expected, without_runs) == by_packet


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=equal_packet_streams(), config_args=configs, batch_bytes=st.integers(200, 5000))
def test_batches_of_equal_packets_match_the_packet_path(packets, config_args, batch_bytes):
    check_reader(packets, config_args, batch_bytes)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=streams(), config_args=configs, batch_bytes=st.integers(100, 3000))
def test_batches_of_any_packets_match_the_packet_path(packets, config_args, batch_bytes):
    check_reader(packets, config_args, batch_bytes)


def test_runs_found_while_framing():
    """One heap of a first packet with an item pointer, equal packets, a short last one."""
    payload = bytes(i % 251 for i in range(64 * 20 + 5))
    packets = [
        packet(5, len(payload), off, payload[off : off + 64], (addr(ITEM, 0),) if off == 0 else ())
        for off in range(0, len(payload), 64)
    ]
    sink = read_batches(b"".join(packets), 1 << 20)
    [batch] = sink.batches
    # Packet 0 is larger (more pointers); 1 and 2 are framed one by one, and
    # the rest from 2 on (the second of two equal packets) in bulk, where the
    # run 2-19 is found; 20 is short.
    assert [(r.first, r.last, r.offset, r.plen, r.cnt) for r in batch.runs] == [(2, 19, 128, 64, 5)]
    assert run_assembler({}, packets, sink.batches)[0][0][4] == payload


def _single_heaps_record(batch: PacketBatch, stop: bool) -> tuple | None:
    found = single_packet_heaps(batch, stop_words(True) if stop else None)
    if found is None:
        return None
    return tuple(
        value.tolist() if isinstance(value, np.ndarray) else value
        for value in (getattr(found, name) for name in found.__slots__)
    )


def check_framed(packets: list[bytes], config_args: dict, batch_bytes: int) -> int:
    """The reader's framed stretches are what they claim; the single-heap pass finds the same with them.

    Returns how many batches had a stretch the single-heap pass used.
    """
    data = b"".join(packets)
    sink = read_batches(data, batch_bytes)
    used = 0
    for batch in sink.batches:
        bare = PacketBatch(batch.view, batch.starts, batch.sizes, batch.stable, batch.runs)
        if batch.framed is not None:
            first, rows = batch.framed
            template = batch[first]
            header = struct.unpack_from(">Q", template)[0]
            pointers = header & 0xFFFF
            hab = 8 * ((header >> 32) & 0xFF)
            words = [struct.unpack_from(f">{1 + pointers}Q", batch[first + j]) for j in range(len(rows))]
            assert rows.tolist() == [list(w) for w in words]
            for j, w in enumerate(words):
                assert len(batch[first + j]) == len(template) and w[0] == header
                assert [x >> hab for x in w[1:]] == [x >> hab for x in words[0][1:]]
            used += (first <= len(batch) // 2 < first + len(rows))
        for stop in (False, True):
            assert _single_heaps_record(batch, stop) == _single_heaps_record(bare, stop)
    check_reader(packets, config_args, batch_bytes)
    without = [PacketBatch(b.view, b.starts, b.sizes, b.stable, b.runs) for b in sink.batches]
    expected, _ = framed_one_by_one(data)
    by_packet = run_placer(config_args, 0, expected, None)
    assert run_placer(config_args, 0, expected, sink.batches) == by_packet
    assert run_placer(config_args, 0, expected, without) == by_packet
    return used


@st.composite
def framed_single_streams(draw):
    """Single-packet heaps of one layout and size, which the reader frames in bulk, with look-alikes.

    Look-alikes of the same size that framing counts but that are not whole
    heaps (an offset, another heap length, a stop item, an address beyond
    the heap); of the same size that framing stops at (pointers in another
    order, reserved header bits; also as the second packet of a batch, so
    the stretch starts at it); packets of another size, also a few first.
    """
    hab = draw(st.sampled_from([40, 48]))
    size = draw(st.sampled_from([8, 13, 64]))
    extra = draw(st.sampled_from([
        lambda cnt, address=0: (addr(ITEM, address, hab),),
        lambda cnt, address=0: (addr(ITEM, address, hab), imm(ITEM + 1, cnt * 3, hab)),
        lambda cnt, address=0: (imm(STREAM_CTRL, CTRL_START, hab), addr(ITEM, address, hab), imm(ITEM + 2, 5, hab)),
    ]))
    n = draw(st.integers(16, 80))
    packets = [packet(c, size, 0, bytes((c + i) % 251 for i in range(size)), extra(c), hab) for c in range(n)]
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["offset", "length", "stop", "address", "order", "reserved", "size", "first"]))
        at = draw(st.integers(0, len(packets) - 1))
        c = 1000 + at
        payload = bytes(size)
        if kind == "offset":
            packets[at] = packet(c, size + 8, 8, payload, extra(c), hab)
        elif kind == "length":
            packets[at] = packet(c, size + 5, 0, payload, extra(c), hab)
        elif kind == "stop":
            words = [imm(STREAM_CTRL, CTRL_STOP, hab) if w == imm(STREAM_CTRL, CTRL_START, hab) else w
                     for w in extra(c)]
            packets[at] = packet(c, size, 0, payload, (*words[:-1], imm(STREAM_CTRL, CTRL_STOP, hab)), hab)
        elif kind == "address":
            packets[at] = packet(c, size, 0, payload, extra(c, size + 1), hab)
        elif kind == "order":
            packets[at] = packet(c, size, 0, payload, extra(c)[::-1], hab)
        elif kind == "reserved":
            word = struct.unpack_from(">Q", packets[at])[0] | (0xBEEF << 16)
            packets[at] = struct.pack(">Q", word) + packets[at][8:]
        elif kind == "size":
            packets[at] = packet(c, size + 8, 0, bytes(size + 8), extra(c), hab)
        else:
            packets[:0] = [packet(2000 + j, size + 8, 0, bytes(size + 8), extra(j), hab)
                           for j in range(draw(st.integers(1, 12)))]
    return packets


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=framed_single_streams(), config_args=single_configs, batch_bytes=st.integers(800, 8000))
def test_single_heaps_from_the_framed_words_match_the_packet_path(packets, config_args, batch_bytes):
    check_framed(packets, config_args, batch_bytes)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=single_packet_streams(), config_args=single_configs, batch_bytes=st.integers(200, 5000))
def test_single_heaps_of_any_stream_from_the_framed_words_match_the_packet_path(packets, config_args, batch_bytes):
    check_framed(packets, config_args, batch_bytes)


def test_single_heaps_read_the_words_framing_read():
    """Equal single-packet heaps with a look-alike: the stretch covers the batch; with ten others first, it starts after them."""
    hab = 48
    packets = [packet(c, 16, 0, bytes([c]) * 16, (addr(ITEM, 0, hab),), hab) for c in range(40)]
    packets[30] = packet(30, 24, 8, bytes(16), (addr(ITEM, 0, hab),), hab)  # framed alike, not a whole heap
    sink = read_batches(b"".join(packets), 1 << 20)
    [batch] = sink.batches
    assert batch.framed is not None and batch.framed[0] == 0 and len(batch.framed[1]) == 40
    found = single_packet_heaps(batch, None)
    assert found is not None and found.fast == [i != 30 for i in range(40)]
    assert found.cnt[:3] == [0, 1, 2] and found.count == 39
    # Packets 0-9 another size: the stretch starts at 10, and 0-9 are read one by one.
    packets[:10] = [packet(c, 8, 0, bytes([c]) * 8, (addr(ITEM, 0, hab),), hab) for c in range(10)]
    [batch] = read_batches(b"".join(packets), 1 << 20).batches
    assert batch.framed is not None and batch.framed[0] == 10 and len(batch.framed[1]) == 30
    assert check_framed(packets, {}, 1 << 20) == 1
    found = single_packet_heaps(batch, None)
    assert found is not None and found.fast == [i != 30 for i in range(40)] and found.length[:11] == [8] * 10 + [16]
