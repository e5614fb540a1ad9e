"""Asyncio receive stream: ``await stream.get()`` and ``async for heap in stream``."""

from __future__ import annotations

import asyncio as _asyncio

from .._errors import Stopped
from .._thread_pool import ThreadPool
from ..protocols.heaps import HeapBase
from . import _stream
from ._chunk_asyncio import ChunkRingbuffer

__all__ = ["ChunkRingbuffer", "Stream"]


class Stream(_stream.Stream):
    """A receive stream for asyncio programs.

    Constructed inside a running loop, the stream's protocol work runs on that
    loop (no thread hop at all); constructed outside one, it runs on a thread
    of ``thread_pool``. Either way :meth:`get` is a coroutine, several may be
    pending at once and they are served in call order.
    """

    def _select_loop(self, thread_pool: ThreadPool) -> _asyncio.AbstractEventLoop:
        try:
            return _asyncio.get_running_loop()
        except RuntimeError:
            return thread_pool.next_loop()

    async def get(self) -> HeapBase:  # type: ignore[override]
        """The next heap; raises ``spead2.Stopped`` once stopped and drained."""
        return await self._core.ring.get_async()

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> HeapBase:
        try:
            return await self._core.ring.get_async()
        except Stopped:
            raise StopAsyncIteration from None
