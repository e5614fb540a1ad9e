"""``recv.asyncio.ChunkRingbuffer``: the chunk ring with ``await get()``, ``await put()``, ``async for``."""

from __future__ import annotations

import asyncio

from ..._errors import Empty, Full, Stopped
from .config import Chunk
from .rings import ChunkRingbuffer as _ChunkRingbuffer

__all__ = ["ChunkRingbuffer"]


class ChunkRingbuffer(_ChunkRingbuffer):
    """A :class:`spead2.recv.ChunkRingbuffer` whose ``get`` and ``put`` are coroutines.

    Waiting costs no thread: the coroutine sleeps on a future that the ring
    resolves (thread-safely) when a chunk or free space may be available.
    ``get_nowait``, ``put_nowait``, ``stop`` etc. are inherited unchanged, so a
    stream on another thread can fill or drain the ring.
    """

    async def get(self) -> Chunk:  # type: ignore[override]
        """The next chunk; raises ``spead2.Stopped`` once the ring is stopped and drained."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return self.get_nowait()
            except Empty:
                pass
            waiter = self._wait_data(loop)
            try:
                await waiter
            finally:
                waiter.cancel()

    async def put(self, chunk: Chunk) -> None:  # type: ignore[override]
        """Add a chunk, waiting for room; raises ``spead2.Stopped`` if the ring is stopped."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.put_nowait(chunk)
                return
            except Full:
                pass
            waiter = self._wait_space(loop)
            try:
                await waiter
            finally:
                waiter.cancel()

    def __aiter__(self) -> ChunkRingbuffer:
        return self

    async def __anext__(self) -> Chunk:
        try:
            return await self.get()
        except Stopped:
            raise StopAsyncIteration from None
