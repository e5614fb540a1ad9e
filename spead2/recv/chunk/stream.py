"""The chunk stream core and :class:`ChunkRingStream`.

The packet work is the sans-IO :class:`~spead2.protocols.chunking.ChunkPlacer`;
this module supplies it with chunks (a *source*) and runs it on the stream's
event loop. The placer never blocks: when no chunk is available it holds the
packet, ``feed`` answers PAUSE (``ring_full``) and :meth:`ChunkStreamCore.wait_for_space`
waits for the rings (or the group) before resuming it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ..._errors import Empty, Full, Stopped
from ..._log import log_limited, logger
from ..._thread_pool import ThreadPool
from ...protocols.chunking import NOT_READY, SOURCE_STOPPED, ChunkPlacer, chunk_stream_stat_configs
from ...protocols.stats import StreamStatConfig
from .._config import StreamConfig
from .._receiver import ReceiverCore, _Stream
from .config import Chunk, ChunkStreamConfig
from .place import make_place
from .rings import ChunkRingbuffer, ChunkRingPair

__all__ = ["ChunkRingStream", "ChunkStreamCore", "StreamChunkSource", "drop_undeliverable", "flush_to_ring"]


# =====================================================================================
# Chunk sources: where a placer's chunks come from and go to
# =====================================================================================


class StreamChunkSource:
    """What :class:`ChunkStreamCore` needs beyond the placer's :class:`~spead2.protocols.chunking.ChunkSource`."""

    @property
    def backlogged(self) -> bool:
        """Whether released chunks are waiting for room in the data ring."""
        raise NotImplementedError

    def acquire(self, chunk_id: int) -> Any:
        raise NotImplementedError

    def release(self, tail: int) -> None:
        raise NotImplementedError

    def deliver(self) -> None:
        """Move waiting chunks into the data ring, as far as it has room."""
        raise NotImplementedError

    def waiters(self, loop: asyncio.AbstractEventLoop, blocked: bool) -> list[asyncio.Future[None]]:
        """Futures of ``loop``; one resolves when retrying (``deliver``, ``resume``) may succeed."""
        raise NotImplementedError

    def close(self, by_user: bool) -> None:
        """The placer has stopped (and released every chunk)."""
        raise NotImplementedError

    def network_done(self) -> None:
        """A network-side end has delivered everything."""
        raise NotImplementedError


def flush_to_ring(outgoing: deque[Chunk], ring: ChunkRingbuffer) -> None:
    """Put ``outgoing`` chunks (in order) into ``ring`` while it has room; drop them if it is stopped."""
    while outgoing:
        try:
            ring.put_nowait(outgoing[0])
        except Full:
            return
        except Stopped:
            log_limited(
                30, "chunk-data-stopped",
                "data chunk ringbuffer stopped: dropped %d chunk(s)", len(outgoing),
            )
            outgoing.clear()
            return
        except (ValueError, TypeError) as exc:  # the user unset a buffer of a chunk in flight
            log_limited(30, "chunk-data-bad", "dropped chunk %d: %s", outgoing[0].chunk_id, exc)
        outgoing.popleft()


def drop_undeliverable(outgoing: deque[Chunk]) -> None:
    if outgoing:
        logger.warning(
            "stream stopped with the data ringbuffer full: dropped %d chunk(s) (IDs %d to %d)",
            len(outgoing), outgoing[0].chunk_id, outgoing[-1].chunk_id,
        )
        outgoing.clear()


class _RingSource(StreamChunkSource):
    """Chunks of one :class:`ChunkRingStream`: taken from the free ring, given to the data ring."""

    def __init__(self, data: ChunkRingbuffer, free: ChunkRingbuffer, stream_id: int) -> None:
        self._data = data
        self._free = free
        self._stream_id = stream_id
        self._chunks: dict[int, Chunk] = {}
        self._outgoing: deque[Chunk] = deque()

    @property
    def backlogged(self) -> bool:
        return bool(self._outgoing)

    def acquire(self, chunk_id: int) -> Any:
        try:
            chunk = self._free.get_nowait()
        except Empty:
            return NOT_READY
        except Stopped:
            return SOURCE_STOPPED
        chunk.chunk_id = chunk_id
        chunk.stream_id = self._stream_id
        self._chunks[chunk_id] = chunk
        return chunk

    def release(self, tail: int) -> None:
        chunks = self._chunks
        while chunks:
            first = next(iter(chunks))
            if first >= tail:
                break
            self._outgoing.append(chunks.pop(first))
        # Delivered at the end of the reader's batch (ChunkStreamCore.batch_done)
        # or when the stream waits: one hand-over to the consumer per batch,
        # not per chunk (each wakes the consumer's thread, which then competes
        # for the GIL).

    def deliver(self) -> None:
        flush_to_ring(self._outgoing, self._data)

    def waiters(self, loop: asyncio.AbstractEventLoop, blocked: bool) -> list[asyncio.Future[None]]:
        futures = []
        if self._outgoing:
            futures.append(self._data._wait_space(loop))
        if blocked:
            futures.append(self._free._wait_data(loop))
        return futures

    def close(self, by_user: bool) -> None:
        self.deliver()
        if by_user:
            drop_undeliverable(self._outgoing)
            self._data.stop()
            self._free.stop()

    def network_done(self) -> None:
        self._data.remove_producer()


# =====================================================================================
# The stream core
# =====================================================================================


class ChunkStreamCore(ReceiverCore):
    """A receive core whose packets go into chunks through a :class:`ChunkPlacer`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: StreamConfig,
        chunk_config: ChunkStreamConfig,
        stat_configs: list[StreamStatConfig],
        source: StreamChunkSource,
    ) -> None:
        super().__init__(loop, config, stat_configs)
        self.chunk_config = chunk_config
        self.source = source
        place = make_place(
            chunk_config.place, len(chunk_config.items), len(stat_configs), chunk_config.max_heap_extra
        )
        self.placer = ChunkPlacer(config, chunk_config, place, source, self.stats, log_limited)  # type: ignore[arg-type]
        self.packet_consumer = self.placer
        self._unblocker: asyncio.Task[None] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._source_closed = False

    # -- StreamSink ----------------------------------------------------------------------

    def batch_done(self) -> None:
        self.placer.merge_place_stats()
        if self.source.backlogged:
            self.source.deliver()

    def ring_full(self) -> bool:
        return self.placer.blocked or self.source.backlogged

    async def wait_for_space(self, lossy: bool = False) -> None:
        """Wait until a chunk is available (and held packets placed) and the data ring took its chunks.

        Several readers may wait at once; one task does the work for all of them.
        """
        if not self.ring_full():
            return
        task = self._unblocker
        if task is None or task.done():
            task = self._unblocker = self.loop.create_task(self._unblock())
        await asyncio.shield(task)

    async def _wait_source(self) -> None:
        futures = self.source.waiters(self.loop, self.placer.blocked)
        if not futures:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in futures:
                future.cancel()

    async def _unblock(self) -> None:
        while not self.stopped:
            self.source.deliver()
            if self.placer.blocked:
                running = self.placer.resume()
                self.placer.merge_place_stats()
                self.source.deliver()
                if not running:
                    self.stop(by_user=False)  # a held packet carried a stop item
                    return
            if not self.ring_full():
                return
            await self._wait_source()

    # -- group support -------------------------------------------------------------------

    def flush_until(self, tail: int) -> None:
        """A lossy group moved on: give up chunks below ``tail`` (on the loop)."""
        if not self.placer.stopped:
            self.placer.flush_until(tail)

    # -- stopping ---------------------------------------------------------------------------

    def stop(self, by_user: bool = True) -> None:
        if self.stopped:
            drainer = self._drainer
            if by_user and drainer is not None and not drainer.done():
                # The user stops a stream still delivering after the end of its
                # data: stop waiting for the consumer and end now.
                self._drainer = None
                if drainer is not asyncio.current_task():
                    drainer.cancel()
                self._end(by_user=True)
            return
        super().stop(by_user)

    def _end(self, by_user: bool) -> None:
        """Stop the placer (releasing every chunk) and tell the source, once."""
        self.placer.stop()
        if not self._source_closed:
            self._source_closed = True
            self.source.close(by_user)
        elif by_user:
            self.source.close(by_user=True)  # a user stop after a network end still stops the rings

    def finish(self, by_user: bool) -> None:
        unblocker = self._unblocker
        if unblocker is not None and not unblocker.done() and unblocker is not asyncio.current_task():
            unblocker.cancel()
        if by_user or self.loop.is_closed():
            # Live chunks are flushed to the data ring (as far as it has room), then
            # both rings stop. (With the loop closed nothing could wait anyway.)
            self._end(by_user=True)
            return
        if not self.placer.blocked:
            self._end(by_user=False)
            if not self.source.backlogged:
                self.source.network_done()
                return
        self._drainer = self.loop.create_task(self._drain_then_finish())

    async def _drain_then_finish(self) -> None:
        """End of the data: place the held packets and deliver every chunk, waiting as long as it takes."""
        placer = self.placer
        source = self.source
        while placer.blocked:
            source.deliver()
            placer.resume()  # False (a stop item) leaves the placer stopped, hence unblocked
            if placer.blocked:
                await self._wait_source()
        self._end(by_user=False)
        while True:
            source.deliver()
            if not source.backlogged:
                break
            await self._wait_source()
        self._drainer = None
        source.network_done()


# =====================================================================================
# ChunkRingStream
# =====================================================================================


class ChunkRingStream(ChunkRingPair, _Stream):
    """A receive stream that places heap payloads into chunks.

    Empty chunks come from ``free_ringbuffer`` (see :meth:`add_free_chunk`);
    finished chunks go, in ascending chunk ID order, to ``data_ringbuffer``.
    Has every reader method of ``recv.Stream``, ``start``, ``stop``,
    ``stats`` and ``config``; chunks are consumed from the data ring.

    :meth:`stop` flushes the chunks under construction to the data ring (as
    far as it has room) and stops both rings. An end coming from the data
    (end of input, stop item) flushes them too, waiting for room, and stops
    the data ring once its last producer is done; the free ring stays usable.
    """

    _core: ChunkStreamCore

    def __init__(
        self,
        thread_pool: ThreadPool,
        config: StreamConfig | None = None,
        chunk_stream_config: ChunkStreamConfig | None = None,
        data_ringbuffer: ChunkRingbuffer | None = None,
        free_ringbuffer: ChunkRingbuffer | None = None,
    ) -> None:
        config = StreamConfig() if config is None else config
        self._check_types(thread_pool, config)
        if not isinstance(chunk_stream_config, ChunkStreamConfig):
            raise TypeError(
                "chunk_stream_config must be a spead2.recv.ChunkStreamConfig, "
                f"not {type(chunk_stream_config).__name__}"
            )
        ChunkRingPair.__init__(self, data_ringbuffer, free_ringbuffer)  # type: ignore[arg-type]
        if chunk_stream_config.place is None:
            raise ValueError("chunk_config.place is not set")
        config = config.copy()
        config.allow_unsized_heaps = False  # placement needs each heap's length up front
        chunk_config = chunk_stream_config.copy()
        loop = self._select_loop(thread_pool)
        source = _RingSource(self._data_ring, self._free_ring, config.stream_id)
        core = ChunkStreamCore(loop, config, chunk_config, chunk_stream_stat_configs(config), source)
        self._data_ring.add_producer()
        self._init_core(thread_pool, core)

    def stop(self) -> None:
        """Stop receiving: flush the chunks under construction, then stop both rings."""
        self._core.stop_threadsafe()
        self._data_ring.stop()
        self._free_ring.stop()
