"""Shared pieces of the fuzz targets and the hostile-input tests.

* A framing for "a sequence of packets" in one fuzz input: one configuration
  byte, then ``[2-byte big-endian length][packet bytes]`` repeated (the last
  packet may be cut short by the end of the input).
* Assembler rigs built from that configuration byte.
* The invariants every target checks: the byte-provenance rule (each byte of a
  complete heap was sent, for that heap, by some packet), statistics that add
  up, and live-heap memory bounded by the bytes fed.
* Seed heaps: real packets from our own sender (``spead2.send.PacketGenerator``)
  over varied heaps, items, flavours and packet sizes.

Imported as ``tests.fuzz._harness``, by the test suite and by the fuzz
scripts (which put the repository root on ``sys.path``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import spead2
import spead2.recv
import spead2.send
from spead2.protocols import assembler as assembler_module
from spead2.protocols.assembler import HeapAssembler, stream_stat_configs
from spead2.protocols.heaps import Heap, HeapBase, IncompleteHeap
from spead2.protocols.packet import decode_packet
from spead2.protocols.stats import HEAPS, PACKETS

_LENGTH = struct.Struct(">H")

# -- framing ---------------------------------------------------------------------------


def split_packets(data: bytes) -> tuple[int, list[bytes]]:
    """``(config byte, packets)`` of a framed fuzz input (see the module docstring)."""
    if not data:
        return 0, []
    config = data[0]
    packets = []
    pos = 1
    size = len(data)
    while pos + 2 <= size:
        (length,) = _LENGTH.unpack_from(data, pos)
        pos += 2
        packets.append(data[pos : pos + length])
        pos += length
    return config, packets


def frame(packets: Iterable[bytes], config: int = 0) -> bytes:
    """The fuzz input that :func:`split_packets` turns back into ``(config, packets)``."""
    out = bytearray([config & 0xFF])
    for packet in packets:
        out += _LENGTH.pack(len(packet)) + packet
    return bytes(out)


# -- assembler rigs --------------------------------------------------------------------


#: Bits of the configuration byte.
OUT_OF_ORDER = 0x01
NO_UNSIZED = 0x02
CONTIGUOUS_ONLY = 0x04
KEEP_RANGES = 0x08
SUBSTREAMS_3 = 0x40
NO_STOP = 0x80


@dataclass
class Rig:
    """An assembler with everything it delivered and its statistics list."""

    config: spead2.recv.StreamConfig
    ring_config: spead2.recv.RingStreamConfig
    delivered: list[HeapBase] = field(default_factory=list)
    stats: list[int] = field(default_factory=list)
    assembler: HeapAssembler = field(init=False)

    def __post_init__(self) -> None:
        self.stats = [0] * len(stream_stat_configs(self.config))
        self.assembler = HeapAssembler(
            self.config, self.ring_config, self.delivered.append, self.stats
        )

    @property
    def invalid_packets(self) -> int:
        """The ``invalid_packets`` statistic (right after the config's custom statistics)."""
        return self.stats[len(self.config.stats)]


def make_rig(config_byte: int) -> Rig:
    """An assembler configured from the bits of ``config_byte``."""
    config = spead2.recv.StreamConfig(
        max_heaps=(1, 2, 4, 8)[(config_byte >> 4) & 3],
        substreams=3 if config_byte & SUBSTREAMS_3 else 1,
        allow_out_of_order=bool(config_byte & OUT_OF_ORDER),
        allow_unsized_heaps=not config_byte & NO_UNSIZED,
        stop_on_stop_item=not config_byte & NO_STOP,
    )
    ring = spead2.recv.RingStreamConfig(
        contiguous_only=bool(config_byte & CONTIGUOUS_ONLY),
        incomplete_keep_payload_ranges=bool(config_byte & KEEP_RANGES),
    )
    return Rig(config, ring)


# -- invariants ------------------------------------------------------------------------


class ProvenanceTracker:
    """Remembers, per heap cnt, the payload every packet offered for it.

    A complete heap is right only if each of its bytes equals the byte that
    some packet with its cnt (and flavour) carried for that position: the
    receiver may choose between conflicting packets, but it must never invent
    bytes (a zero-filled gap, a byte from another heap, or from the wrong
    offset). Packets are forgotten when their heap is delivered, so a later
    heap reusing the cnt is judged only on its own packets.
    """

    def __init__(self) -> None:
        self._offers: dict[tuple[int, int], list[tuple[int, bytes]]] = {}

    def offer(self, packet: bytes | bytearray | memoryview) -> None:
        """Record what ``packet`` carries (nothing if it does not decode)."""
        decoded = decode_packet(packet)
        if decoded is None:
            return
        cnt, _length, offset, plen, hab, start, _pointers = decoded
        if plen:
            self._offers.setdefault((cnt, hab), []).append(
                (offset, bytes(memoryview(packet)[start : start + plen]))
            )

    def check(self, heap: HeapBase) -> None:
        """Assert the byte-provenance rule for ``heap``, then forget its packets."""
        key = (heap.cnt, heap.flavour.heap_address_bits)
        offers = self._offers.pop(key, [])
        if not isinstance(heap, Heap):
            return
        payload = np.frombuffer(heap.payload, np.uint8)
        ok = np.zeros(len(payload), bool)
        for offset, data in offers:
            if offset >= len(payload):
                continue
            chunk = np.frombuffer(data, np.uint8)[: len(payload) - offset]
            ok[offset : offset + len(chunk)] |= payload[offset : offset + len(chunk)] == chunk
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise AssertionError(
                f"heap {heap.cnt}: byte {bad} ({payload[bad]:#x}) was not sent by any "
                f"of its {len(offers)} packets"
            )


def live_heap_bytes(rig: Rig) -> tuple[int, int]:
    """``(bytes held by live heaps, number of live heaps)``, from the assembler's internals."""
    total = 0
    count = 0
    for heap in rig.assembler._table.heaps():
        count += 1
        total += len(heap.payload)
        if heap.pending:
            total += sum(len(data) for _, data in heap.pending)
    return total, count


def check_memory_bound(rig: Rig, bytes_fed: int) -> None:
    """Live heaps may hold at most a small multiple of the bytes fed, plus slack per heap."""
    held, count = live_heap_bytes(rig)
    bound = 3 * bytes_fed + 2 * assembler_module.LOOKAHEAD_SLACK * count
    assert held <= bound, f"live heaps hold {held} bytes after {bytes_fed} bytes fed"


def feed_and_check(
    rig: Rig,
    packets: Iterable[bytes],
    on_heap: Callable[[HeapBase], None] | None = None,
    flush: bool = True,
) -> None:
    """Feed ``packets``, checking every invariant after each one and at the end.

    ``on_heap`` sees each delivered heap once, after the provenance check.
    """
    tracker = ProvenanceTracker()
    fed = 0
    accepted = 0
    bytes_fed = 0
    seen = 0
    running = True
    for packet in packets:
        tracker.offer(packet)
        result = rig.assembler.add_packet(packet)
        assert result is True or result is False
        if running:
            accepted += 1
            bytes_fed += len(packet)
        running = result
        fed += 1
        check_memory_bound(rig, bytes_fed)
        # Packets the assembler looked at are either counted packets or invalid ones.
        assert rig.stats[PACKETS] + rig.invalid_packets == accepted
        seen = _check_new(rig, tracker, seen, on_heap)
    if flush:
        rig.assembler.flush(deliver_incomplete=True)
        seen = _check_new(rig, tracker, seen, on_heap)
        assert rig.assembler.live_heaps == 0
        if not rig.ring_config.contiguous_only:
            # Every heap that left (completed, evicted or flushed) was delivered.
            assert rig.stats[HEAPS] == len(rig.delivered)
        else:
            assert rig.stats[HEAPS] >= len(rig.delivered)


def _check_new(
    rig: Rig, tracker: ProvenanceTracker, seen: int, on_heap: Callable[[HeapBase], None] | None
) -> int:
    for heap in rig.delivered[seen:]:
        if isinstance(heap, IncompleteHeap):
            assert heap.received_length >= 0
            if heap.heap_length >= 0:
                assert heap.received_length <= heap.heap_length
            for start, end in heap.payload_ranges:
                assert 0 <= start < end
        tracker.check(heap)
        if on_heap is not None:
            on_heap(heap)
    return len(rig.delivered)


def update_only_value_errors(
    group: spead2.ItemGroup, heap: Heap, new_order: str = "="
) -> dict[str, Any] | None:
    """``group.update(heap)``; ``None`` if it raised ``ValueError``, the only error it may raise.

    (Like the reference, ``update`` takes complete heaps only: an
    ``IncompleteHeap`` has no ``get_descriptors``.)
    """
    try:
        return group.update(heap, new_order)
    except ValueError:
        return None


# -- seeds from our sender -------------------------------------------------------------


FLAVOUR_BITS = (40, 48, 24, 56, 32, 16, 8)


def _items_for(index: int, flavour_bits: int) -> list[dict[str, Any]]:
    """Varied item definitions (as ``ItemGroup.add_item`` keyword arguments)."""
    rng = np.random.default_rng(index)
    base = 0x1000 if flavour_bits <= 48 else (0x40 if flavour_bits == 56 else 0x10)
    items: list[dict[str, Any]] = [
        dict(id=base, name="counter", description="u32 scalar", shape=(), format=[("u", 32)],
             value=index),
        dict(id=base + 1, name="spectrum", description="complex array", shape=(8, 3),
             dtype="<c8", value=(rng.standard_normal((8, 3)) + 1j).astype("<c8")),
        dict(id=base + 2, name="packed", description="bit-packed", shape=(None,),
             format=[("u", 12), ("i", 5)], value=[(i * 37 % 4096, i % 16 - 8) for i in range(7)]),
        dict(id=base + 3, name="label", description="string", shape=(None,),
             format=[("c", 8)], value=f"heap {index}"),
        dict(id=base + 4, name="fortran", description="F-order", shape=(3, 2), dtype=">i2",
             order="F", value=np.arange(6, dtype=">i2").reshape(3, 2) * (index + 1)),
        dict(id=base + 5, name="wide", description="u40 fast path", shape=(),
             format=[("u", 40)], value=(index * 1234567) % (1 << 40)),
        dict(id=base + 6, name="flag", description="bool", shape=(), dtype="?", value=True),
        dict(id=base + 7, name="blob", description="bytes", shape=(100 + 37 * index,),
             dtype="u1", value=rng.integers(0, 256, 100 + 37 * index, dtype=np.uint8)),
    ]
    return items[: 2 + index % (len(items) - 1)]


def seed_heaps(count: int = 12) -> Iterator[tuple[int, list[bytes]]]:
    """``(heap_address_bits, packets)`` of varied heaps sent by our ``PacketGenerator``."""
    sizes = (64, 96, 200, 1472, 9000)
    for index in range(count):
        bits = FLAVOUR_BITS[index % len(FLAVOUR_BITS)]
        flavour = spead2.Flavour(4, 64, bits, spead2.BUG_COMPAT_PYSPEAD_0_5_2 if index == 5 else 0)
        group = spead2.send.ItemGroup(flavour=flavour)
        for spec in _items_for(index, bits):
            try:
                group.add_item(**spec)
            except ValueError:
                continue  # an item ID this flavour cannot carry
        heaps = []
        try:
            heaps.append(group.get_heap(descriptors="all", data="all"))
        except ValueError:
            continue
        if index % 4 == 0:
            heaps.insert(0, group.get_start())
        if index % 4 == 3:
            heaps.append(group.get_end())
        packets: list[bytes] = []
        for n, heap in enumerate(heaps):
            try:
                packets.extend(spead2.send.PacketGenerator(heap, index * 4 + n + 1, sizes[index % 5]))
            except ValueError:
                packets.extend(spead2.send.PacketGenerator(heap, index * 4 + n + 1, 9000))
        yield bits, packets
