"""The fuzz targets: one function per surface, each taking the fuzzer's bytes.

A target returns normally for any input; an uncaught exception or a failed
assertion is a finding. The targets are plain functions so that the test
suite can replay the committed corpus (and past crashes) without atheris:
see ``tests/system/test_fuzz_smoke.py``. ``fuzz.py`` runs them under atheris.

* ``packet``: ``spead2.protocols.packet.decode_packet`` and ``packet_size``.
* ``assembler``: ``HeapAssembler.add_packet`` over a sequence of packets
  (framed as in ``_harness``), with the configuration taken from byte 0;
  checks byte provenance, statistics and the live-memory bound.
* ``descriptors``: ``decode_descriptors`` and ``Descriptor.from_raw``.
* ``itemgroup``: ``ItemGroup.update`` on heaps assembled from the packets
  (byte 0 even), or on a heap built directly from raw pointers and payload
  (byte 0 odd), checking decoded values against the raw item bytes.
* ``tcp``: the TCP reader's in-place framing (``_FramingProtocol``) fed a
  byte stream in arbitrary read sizes, with small buffers so partial packets
  move often; the packets it frames and the invalid count must equal those of
  a plain model framer over the whole stream (the framing ``packet_size``
  defines), whatever the chunking.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import numpy as np

import spead2
from spead2.protocols.descriptors import decode_descriptors, encode_descriptor
from spead2.protocols.flavour import Flavour
from spead2.protocols.heaps import Heap, HeapBase
from spead2.protocols.packet import PacketError, _decode_full, decode_packet, packet_size
from spead2.transports.base import GO
from tests.fuzz import _harness

__all__ = ["TARGETS", "packet", "assembler", "descriptors", "itemgroup", "tcp"]

_IMMEDIATE = 1 << 63


def packet(data: bytes) -> None:
    """Decode one packet; the result must describe exactly the bytes given."""
    decoded = decode_packet(data)
    # The fast path must agree with the full decoder.
    assert decoded == _decode_full(data, len(data))
    try:
        size = packet_size(data, 0)
    except PacketError:
        size = -1
    if decoded is None:
        return
    cnt, length, offset, plen, hab, start, pointers = decoded
    assert hab in (8, 16, 24, 32, 40, 48, 56)
    mask = (1 << hab) - 1
    assert 0 <= cnt <= mask and 0 <= offset <= mask and 0 <= plen <= mask
    assert start + plen == len(data)
    assert start == 8 + 8 * struct.unpack_from(">H", data, 6)[0]
    if length >= 0:
        assert offset + plen <= length
    low = ((_IMMEDIATE >> hab) | 1) << hab
    high = ((_IMMEDIATE >> hab) | 5) << hab
    for word in pointers:
        assert not low <= word < high, "a per-packet field leaked into the heap's pointers"
    # A valid packet frames as itself in a byte stream.
    assert size == len(data)


def assembler(data: bytes) -> None:
    """Feed a sequence of packets to an assembler and check every invariant."""
    config, packets = _harness.split_packets(data)
    rig = _harness.make_rig(config)

    def inspect(heap: HeapBase) -> None:
        # Whatever a heap holds, looking at it must not fail.
        heap.get_items()
        heap.is_start_of_stream()
        heap.is_end_of_stream()
        if isinstance(heap, Heap):
            heap.get_descriptors()

    _harness.feed_and_check(rig, packets, inspect)


def descriptors(data: bytes) -> None:
    """Decode descriptor values; every descriptor found must survive a re-encode."""
    if not data:
        return
    bug_compat = data[0] & 7
    value = data[1:]
    found = decode_descriptors(value, bug_compat)
    for raw in found:
        assert len(raw.name) <= len(value) and len(raw.description) <= len(value)
        assert len(raw.shape) <= len(value) and len(raw.format) <= len(value)
        try:
            spead2.Descriptor.from_raw(raw, Flavour(4, 64, 40, bug_compat))
        except ValueError:
            pass
        flavour = Flavour(4, 64, 48, bug_compat)
        try:
            encoded = encode_descriptor(raw, flavour)
        except ValueError:
            continue  # e.g. an ID or a width SPEAD-64-48 cannot carry
        [again] = decode_descriptors(encoded, bug_compat)
        assert (again.id, again.name, again.description, again.numpy_header) == (
            raw.id, raw.name, raw.description, raw.numpy_header
        )
        if not raw.numpy_header:
            assert again.shape == raw.shape and again.format == raw.format


def _check_values(group: spead2.ItemGroup, heap: Heap, updated: dict[str, spead2.Item]) -> None:
    """Natively decoded values must be exactly the raw bytes the heap carried."""
    raw_by_id = {item.id: item for item in heap.get_items()}
    for item in updated.values():
        raw = raw_by_id.get(item.id)
        if raw is None or item.dtype is None or item.order != "C":
            continue
        value = np.asarray(item.value)
        if value.dtype.kind in "SU" or value.dtype.hasobject:
            continue
        data = bytes(memoryview(raw))
        nbytes = value.nbytes
        expected = data[len(data) - nbytes :] if raw.is_immediate else data[:nbytes]
        assert value.tobytes() == expected, f"item {item.id:#x} decoded to the wrong bytes"


def itemgroup(data: bytes) -> None:
    """``ItemGroup.update`` raises nothing but ``ValueError`` and decodes what was sent."""
    if not data:
        return
    group = spead2.ItemGroup()
    if data[0] & 1:
        heaps = [_heap_from_bytes(data)]
    else:
        config, packets = _harness.split_packets(data)
        rig = _harness.make_rig(config | _harness.OUT_OF_ORDER)
        for p in packets:
            rig.assembler.add_packet(p)
        rig.assembler.flush(deliver_incomplete=True)
        heaps = [heap for heap in rig.delivered if isinstance(heap, Heap)]
    for heap in heaps:
        # '|' keeps wire byte order, so values can be compared with raw bytes.
        updated = _harness.update_only_value_errors(group, heap, "|")
        if updated is not None:
            _check_values(group, heap, updated)


def _heap_from_bytes(data: bytes) -> Heap:
    """A heap straight from fuzz bytes: [flags][n pointers][pointers...][payload]."""
    bits = _harness.FLAVOUR_BITS[(data[0] >> 1) % len(_harness.FLAVOUR_BITS)]
    bug_compat = (data[0] >> 4) & 7
    n = data[1] if len(data) > 1 else 0
    n = max(0, min(n, (len(data) - 2) // 8))
    pointers = struct.unpack_from(f">{n}Q", data, 2) if n else ()
    payload = bytearray(data[2 + 8 * n :])
    return Heap(1, Flavour(4, 64, bits, bug_compat), pointers, payload)


class _Sink:
    """The parts of a stream core the TCP framing touches; records what it is fed."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.invalid = 0
        self.stopped = False

    def feed(self, packets: Sequence[memoryview]) -> int:
        self.packets += [bytes(p) for p in packets]
        return GO

    def count_invalid(self, n: int = 1) -> None:
        self.invalid += n

    def stop_from_reader(self) -> None:
        self.stopped = True


class _Reader:
    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.closed = False


def _model_frames(data: bytes, max_size: int) -> tuple[list[bytes], int]:
    """PROTOCOL.md §11 framing over a whole byte stream: (packets, invalid count)."""
    packets = []
    invalid = 0
    pos = 0
    resyncing = False
    while pos < len(data):
        try:
            size = packet_size(data, pos)
        except PacketError:
            if not resyncing:
                invalid += 1
                resyncing = True
            pos += 8
            continue
        if size is None:
            break
        resyncing = False
        if size > max_size:
            invalid += 1
            pos = min(pos + size, len(data))
            continue
        if pos + size > len(data):
            break
        packets.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        invalid += 1  # cut short by the end of the connection
    return packets, invalid


def tcp(data: bytes) -> None:
    """Frame a byte stream read in fuzz-chosen pieces; compare with the model framer."""
    from spead2.transports.tcp import _FramingProtocol

    if len(data) < 4:
        return
    max_size = (64, 200, 1500, 65536)[data[0] & 3]
    capacity = (64, 256, 4096)[(data[0] >> 2) % 3]
    min_read = (8, 32, 64)[(data[0] >> 4) % 3]
    seed = int.from_bytes(data[1:4])
    stream = data[4:]
    sink = _Sink()
    protocol = _FramingProtocol(_Reader(sink), max_size, capacity, min_read)  # type: ignore[arg-type]
    pos = 0
    while pos < len(stream):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        want = 1 + seed % 97
        buffer = protocol.get_buffer(-1)
        n = min(len(buffer), want, len(stream) - pos)
        assert n > 0, "get_buffer returned no room"
        buffer[:n] = stream[pos : pos + n]
        protocol.buffer_updated(n)
        pos += n
    protocol.connection_lost(None)
    assert sink.stopped
    expected, invalid = _model_frames(stream, max_size)
    assert sink.packets == expected, "the TCP framing disagrees with the model framer"
    assert sink.invalid == invalid, (sink.invalid, invalid)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "packet": packet,
    "assembler": assembler,
    "descriptors": descriptors,
    "itemgroup": itemgroup,
    "tcp": tcp,
}
