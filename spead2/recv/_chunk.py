"""Chunk streams (API.md §2.9, §2.10): heaps received straight into pre-allocated chunks.

This module gathers the chunk-stream API, which lives in modules of one
concern each:

* :mod:`._chunk_config` — :class:`Chunk` and :class:`ChunkStreamConfig`.
* :mod:`._chunk_place` — the place callback adapters, :class:`ChunkPlaceData` and :class:`BatchPlace`.
* :mod:`._chunk_rings` — :class:`ChunkRingbuffer` and :class:`ChunkRingPair`.
* :mod:`._chunk_stream` — the stream core and :class:`ChunkRingStream`.
* :mod:`._chunk_group` — :class:`ChunkStreamRingGroup`, its
  :class:`ChunkStreamGroupMember`\\ s and :class:`ChunkStreamGroupConfig`.
"""

from __future__ import annotations

from ._chunk_config import Chunk, ChunkStreamConfig
from ._chunk_group import ChunkStreamGroupConfig, ChunkStreamGroupMember, ChunkStreamRingGroup
from ._chunk_place import BatchPlace, ChunkPlaceData
from ._chunk_place import _make_place as _make_place
from ._chunk_rings import ChunkRingbuffer, ChunkRingPair
from ._chunk_stream import ChunkRingStream
from ._chunk_stream import ChunkStreamCore as ChunkStreamCore

__all__ = [
    "BatchPlace",
    "Chunk",
    "ChunkPlaceData",
    "ChunkStreamConfig",
    "ChunkRingbuffer",
    "ChunkRingPair",
    "ChunkRingStream",
    "ChunkStreamGroupConfig",
    "ChunkStreamRingGroup",
    "ChunkStreamGroupMember",
]
