"""The ring-buffer receive stream (blocking API) and the core it runs on its event loop."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Buffer, Iterator
from typing import Any

from .._inproc import InprocQueue
from .._log import logger
from .._thread_pool import ThreadPool, run_on_loop
from ..protocols.assembler import HeapAssembler, stream_stat_configs
from ..protocols.heaps import HeapBase
from ..protocols.stats import StreamStatConfig, StreamStats
from ..transports.base import Reader
from ..transports.buffer import BufferReader
from ..transports.inproc import InprocReader
from . import stream_stat_indices
from ._config import RingStreamConfig, StreamConfig
from ._network import NetworkReaders
from ._pcap import PcapReaders
from ._ring import HeapRing


class StreamCore:
    """Everything of a stream that lives on its event loop: assembler, ring producer, readers.

    Only the loop's thread touches the assembler and the readers. The core
    holds no reference to the user-facing ``Stream``, so dropping that object
    lets its finaliser stop the core.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, config: StreamConfig, ring_config: RingStreamConfig
    ) -> None:
        self.loop = loop
        self.config = config
        self.ring_config = ring_config
        self.stat_configs: list[StreamStatConfig] = stream_stat_configs(config)
        self.stats = [0] * len(self.stat_configs)
        names = [c.name for c in self.stat_configs]
        self._invalid_index = names.index("invalid_packets")
        self._skipped_index = names.index("skipped_frames")
        self.ring = HeapRing(ring_config.heaps, loop)
        self.assembler = HeapAssembler(config, ring_config, self.ring.put, self.stats)
        self.readers: list[Reader] = []
        self.explicit_start = config.explicit_start
        self.started = not config.explicit_start
        self.stopped = False

    # -- StreamSink, for the transports -------------------------------------------

    def end_batch(self, n_packets: int) -> None:
        self.assembler.end_batch(n_packets)
        self.ring.publish()

    def ring_full(self) -> bool:
        return self.ring.full()

    async def wait_for_space(self) -> None:
        # Normal for lossless readers whose consumer is slower than memory;
        # say so once per stream, and let the statistic count every time.
        if not self.stats[stream_stat_indices.WORKER_BLOCKED]:
            logger.warning(
                "reader blocked by full ringbuffer: the consumer is not keeping up "
                "(counted in the worker_blocked statistic; logged once per stream)"
            )
        self.stats[stream_stat_indices.WORKER_BLOCKED] += 1
        await self.ring.wait_space()

    def count_invalid(self, n: int = 1) -> None:
        self.stats[self._invalid_index] += n

    def count_skipped(self, n: int = 1) -> None:
        self.stats[self._skipped_index] += n

    def stop_from_reader(self) -> None:
        self.stop(by_user=False)

    # -- control (on the loop) -------------------------------------------------------

    def check_can_add_reader(self) -> bool:
        """Whether a new reader would be used; raises if readers may no longer be added."""
        if self.explicit_start and self.started:
            raise RuntimeError("Cannot add readers after explicit start")
        return not self.stopped

    def add_reader(self, reader: Reader) -> None:
        if not self.check_can_add_reader():
            reader.close()
            return
        self.readers.append(reader)
        if self.started:
            reader.start()

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        for reader in list(self.readers):
            if self.stopped:
                break
            reader.start()

    def stop(self, by_user: bool = True) -> None:
        """Stop readers and the ring. Idempotent.

        A user's stop counts partial heaps but does not deliver them; a stop
        from the network side (end of input, stop item) delivers them as
        incomplete heaps when the ring config asks for that.
        """
        if self.stopped:
            return
        self.stopped = True
        for reader in self.readers:
            try:
                reader.close()
            except Exception:  # one reader failing to close must not keep the others open
                logger.exception("error closing a reader")
        self.readers.clear()
        self.assembler.flush(deliver_incomplete=not by_user)
        self.ring.stop()

    def stop_threadsafe(self) -> None:
        """Stop from any thread, even after the loop has stopped running."""
        if self.loop.is_closed():
            # Nothing can run on a closed loop, so nothing else touches the
            # core: stop inline, so that readers still release their sockets.
            self.stop()
            return
        try:
            run_on_loop(self.loop, self.stop)
        except RuntimeError:  # the loop closed meanwhile
            self.stop()


class Stream(NetworkReaders, PcapReaders):
    """A receive stream whose heaps are consumed through a ring buffer.

    The protocol work runs on an event-loop thread of ``thread_pool``;
    :meth:`get` blocks the calling thread (and stays interruptible by Ctrl-C).
    """

    DEFAULT_UDP_MAX_SIZE = 9200
    DEFAULT_UDP_BUFFER_SIZE = 8388608
    DEFAULT_TCP_MAX_SIZE = 65536
    DEFAULT_TCP_BUFFER_SIZE = 212992

    class Ringbuffer:
        """Occupancy of a stream's ring buffer."""

        def __init__(self, ring: HeapRing) -> None:
            self._ring = ring

        def size(self) -> int:
            """Heaps currently in the ring."""
            return self._ring.size()

        def capacity(self) -> int:
            """Maximum heaps the ring holds (``RingStreamConfig.heaps``)."""
            return self._ring.capacity

    def __init__(
        self,
        thread_pool: ThreadPool,
        config: StreamConfig | None = None,
        ring_config: RingStreamConfig | None = None,
    ) -> None:
        if not isinstance(thread_pool, ThreadPool):
            raise TypeError(f"thread_pool must be a spead2.ThreadPool, not {type(thread_pool).__name__}")
        config = StreamConfig() if config is None else config
        ring_config = RingStreamConfig() if ring_config is None else ring_config
        if not isinstance(config, StreamConfig):
            raise TypeError(f"config must be a spead2.recv.StreamConfig, not {type(config).__name__}")
        if not isinstance(ring_config, RingStreamConfig):
            raise TypeError(
                f"ring_config must be a spead2.recv.RingStreamConfig, not {type(ring_config).__name__}"
            )
        loop = self._select_loop(thread_pool)
        self._thread_pool = thread_pool  # keeps the pool (and its loop) alive as long as the stream
        self._core = StreamCore(loop, config.copy(), ring_config.copy())
        self._finalizer = weakref.finalize(self, StreamCore.stop_threadsafe, self._core)

    def _select_loop(self, thread_pool: ThreadPool) -> asyncio.AbstractEventLoop:
        return thread_pool.next_loop()

    # -- properties -------------------------------------------------------------------

    @property
    def config(self) -> StreamConfig:
        """A copy of the stream's configuration."""
        return self._core.config.copy()

    @property
    def ring_config(self) -> RingStreamConfig:
        """A copy of the stream's ring configuration."""
        return self._core.ring_config.copy()

    @property
    def stats(self) -> StreamStats:
        """A consistent snapshot of the stream's statistics."""
        return StreamStats(self._core.stat_configs, list(self._core.stats))

    @property
    def ringbuffer(self) -> Stream.Ringbuffer:
        """The ring buffer's occupancy."""
        return Stream.Ringbuffer(self._core.ring)

    @property
    def fd(self) -> int:
        """A file descriptor that is readable while heaps may be available. Do not read it."""
        return self._core.ring.signal_fd()

    # -- readers ----------------------------------------------------------------------

    def _add_reader(self, make: type[Reader], *args: Any) -> None:
        core = self._core

        def add() -> None:
            if core.check_can_add_reader():
                core.add_reader(make(core, *args))

        run_on_loop(core.loop, add)

    def add_buffer_reader(self, buffer: Buffer) -> None:
        """Receive the packets held back to back in ``buffer``; its end stops the stream."""
        if isinstance(buffer, str):
            raise TypeError("add_buffer_reader needs a bytes-like object, not str")
        memoryview(buffer)  # raises TypeError now, in the caller's thread
        self._add_reader(BufferReader, buffer)

    def add_inproc_reader(self, queue: InprocQueue) -> None:
        """Receive from an in-process queue; stopping the queue stops the stream."""
        if not isinstance(queue, InprocQueue):
            raise TypeError(f"add_inproc_reader needs an InprocQueue, not {type(queue).__name__}")
        self._add_reader(InprocReader, queue)

    # -- control ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the readers (needed only with ``explicit_start``; harmless otherwise)."""
        run_on_loop(self._core.loop, self._core.start)

    def stop(self) -> None:
        """Stop receiving and close every reader. Queued heaps stay retrievable."""
        self._core.stop_threadsafe()

    # -- consumption ------------------------------------------------------------------

    def get(self) -> HeapBase:
        """The next heap, blocking; ``spead2.Stopped`` once stopped and drained."""
        return self._core.ring.get()

    def get_nowait(self) -> HeapBase:
        """The next heap; ``spead2.Empty`` if none is ready, ``spead2.Stopped`` at the end."""
        return self._core.ring.get_nowait()

    def __iter__(self) -> Iterator[HeapBase]:
        return self

    def __next__(self) -> HeapBase:
        from .._errors import Stopped

        try:
            return self.get()
        except Stopped:
            raise StopIteration from None
