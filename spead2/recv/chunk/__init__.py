"""Chunk streams: heaps received straight into pre-allocated chunks.

This package gathers the chunk-stream API (re-exported by :mod:`spead2.recv`),
which lives in modules of one concern each:

* :mod:`.config` — :class:`Chunk` and :class:`ChunkStreamConfig`.
* :mod:`.place` — the place callback adapters, :class:`ChunkPlaceData` and :class:`BatchPlace`.
* :mod:`.rings` — :class:`ChunkRingbuffer` and :class:`ChunkRingPair`.
* :mod:`.asyncio_ring` — ``recv.asyncio.ChunkRingbuffer`` (coroutine ``get`` and ``put``).
* :mod:`.stream` — the stream core and :class:`ChunkRingStream`.
* :mod:`.group` — :class:`ChunkStreamRingGroup`, its
  :class:`ChunkStreamGroupMember`\\ s and :class:`ChunkStreamGroupConfig`.
"""

from __future__ import annotations

from .config import Chunk, ChunkStreamConfig
from .group import ChunkStreamGroupConfig, ChunkStreamGroupMember, ChunkStreamRingGroup
from .place import BatchPlace, ChunkPlaceData
from .rings import ChunkRingbuffer, ChunkRingPair
from .stream import ChunkRingStream

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
