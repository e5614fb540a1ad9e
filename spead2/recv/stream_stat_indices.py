"""Indices of the core receive statistics in ``StreamStats`` (``stats[HEAPS]`` is ``stats["heaps"]``)."""

from ..protocols.stats import (
    BATCHES,
    HEAPS,
    INCOMPLETE_HEAPS_EVICTED,
    INCOMPLETE_HEAPS_FLUSHED,
    MAX_BATCH,
    PACKETS,
    SEARCH_DIST,
    SINGLE_PACKET_HEAPS,
    WORKER_BLOCKED,
)

__all__ = [
    "HEAPS",
    "INCOMPLETE_HEAPS_EVICTED",
    "INCOMPLETE_HEAPS_FLUSHED",
    "PACKETS",
    "BATCHES",
    "MAX_BATCH",
    "SINGLE_PACKET_HEAPS",
    "SEARCH_DIST",
    "WORKER_BLOCKED",
]
