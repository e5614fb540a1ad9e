"""A bare heap assembler (spead2/protocols/assembler.py) with its output and statistics."""

from __future__ import annotations

from typing import Any

from spead2 import _log
from spead2.protocols.assembler import HeapAssembler, stream_stat_configs
from spead2.protocols.heaps import Heap, HeapBase
from spead2.protocols.stats import StreamStats
from spead2.recv._config import RingStreamConfig, StreamConfig


class Rig:
    """An assembler with its output list and statistics."""

    def __init__(self, ring: RingStreamConfig | None = None, **config: Any) -> None:
        self.config = StreamConfig(**config)
        self.ring_config = ring if ring is not None else RingStreamConfig()
        self.heaps: list[HeapBase] = []
        self.configs = stream_stat_configs(self.config)
        self.raw_stats = [0] * len(self.configs)
        self.asm = HeapAssembler(
            self.config, self.ring_config, self.heaps.append, self.raw_stats, _log.log_limited
        )

    def feed(self, *packets: bytes) -> list[bool]:
        return [self.asm.add_packet(p) for p in packets]

    @property
    def stats(self) -> StreamStats:
        return StreamStats(self.configs, self.raw_stats)

    def nonzero_stats(self) -> dict[str, int]:
        return {k: v for k, v in self.stats.items() if v}


def payload_of(heap: object) -> bytes:
    """The payload of a complete heap (failing if the heap is incomplete)."""
    assert isinstance(heap, Heap), heap
    return bytes(heap.payload)
