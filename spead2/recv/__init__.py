"""Receiving SPEAD: streams, heaps, configuration and statistics."""

from ..protocols.heaps import Heap, HeapBase, IncompleteHeap, RawItem
from ..protocols.stats import StreamStatConfig, StreamStats
from . import stream_stat_indices
from ._config import RingStreamConfig, StreamConfig
from ._stream import Stream
from .chunk import (
    BatchPlace,
    Chunk,
    ChunkPlaceData,
    ChunkRingbuffer,
    ChunkRingPair,
    ChunkRingStream,
    ChunkStreamConfig,
    ChunkStreamGroupConfig,
    ChunkStreamGroupMember,
    ChunkStreamRingGroup,
)

__all__ = [
    "BatchPlace",
    "Chunk",
    "ChunkPlaceData",
    "ChunkRingPair",
    "ChunkRingStream",
    "ChunkRingbuffer",
    "ChunkStreamConfig",
    "ChunkStreamGroupConfig",
    "ChunkStreamGroupMember",
    "ChunkStreamRingGroup",
    "Heap",
    "HeapBase",
    "IncompleteHeap",
    "RawItem",
    "RingStreamConfig",
    "Stream",
    "StreamConfig",
    "StreamStatConfig",
    "StreamStats",
    "stream_stat_indices",
]
