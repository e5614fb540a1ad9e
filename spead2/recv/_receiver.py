"""What every receive stream shares: reader lifecycle, statistics, start and stop.

``ReceiverCore`` lives on the stream's event loop and implements the
transports' ``StreamSink``: :meth:`ReceiverCore.feed` is the one call readers
make per batch, and it keeps the batch statistics. Subclasses decide where
packets go (a heap ring, or chunks) by providing ``packet_consumer`` (their
heap assembler or chunk placer), ``batch_done``, ``ring_full``,
``wait_for_space`` and ``finish``. ``_Stream`` is the user-facing base class
with the reader methods (the reference's ``_Stream``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Buffer, Sequence
from typing import Any

from .._inproc import InprocQueue
from .._log import logger
from .._thread_pool import ThreadPool, run_on_loop
from ..protocols.batch import PacketBatch
from ..protocols.placement import PlacedBatch, Placement
from ..protocols.stats import (
    BATCHES,
    EXTRA_STATS,
    INVALID_PACKETS,
    MAX_BATCH,
    SKIPPED_FRAMES,
    StreamStatConfig,
    StreamStats,
)
from ..transports.base import GO, PAUSE, STOP, PacketConsumer, Reader
from ..transports.buffer import BufferReader
from ..transports.inproc import InprocReader
from . import stream_stat_indices
from ._config import StreamConfig
from ._network import NetworkReaders
from ._pcap import PcapReaders


def count_blocked(stats: list[int], what: str) -> None:
    """A reader has a completed heap in hand and the consumer's ``what`` is full.

    Only counted: for lossless readers this is normal back-pressure; a UDP
    reader, which may lose datagrams meanwhile, also warns
    (:meth:`ReceiverCore.warn_lossy_wait`).
    """
    stats[stream_stat_indices.WORKER_BLOCKED] += 1


class ReceiverCore:
    """The loop-side state of a receive stream. Only the loop's thread touches it.

    The core holds no reference to the user-facing stream object, so dropping
    that object lets its finaliser stop the core.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, config: StreamConfig,
        stat_configs: list[StreamStatConfig],
    ) -> None:
        self.loop = loop
        self.config = config
        self.stat_configs = stat_configs
        self.stats = [0] * len(stat_configs)
        # The list ends with our extra statistics, kept out of the layout users
        # see (the reference's) unless they register a statistic of that name.
        names = [c.name for c in stat_configs]
        n_visible = len(stat_configs) - len(EXTRA_STATS)
        extra_names = [name for name, _ in EXTRA_STATS]
        self._invalid_index = n_visible + extra_names.index(INVALID_PACKETS)
        self._skipped_index = n_visible + extra_names.index(SKIPPED_FRAMES)
        self._visible_configs = stat_configs[:n_visible]
        self._mirrored = [
            (names.index(name), n_visible + k)
            for k, name in enumerate(extra_names)
            if name in names[:n_visible]
        ]
        self.readers: list[Reader] = []
        self.explicit_start = config.explicit_start
        self.started = not config.explicit_start
        self.stopped = False
        self._warned_blocked = False

    def snapshot(self) -> StreamStats:
        """The statistics users see: the reference's layout, extras where registered."""
        values = list(self.stats)  # one copy, so that the snapshot is consistent
        visible = values[: len(self._visible_configs)]
        for shown, hidden in self._mirrored:
            visible[shown] = values[hidden]
        return StreamStats(self._visible_configs, visible)

    # -- StreamSink, for the transports ------------------------------------------------

    #: Where readers' packets go (set by subclasses).
    packet_consumer: PacketConsumer

    def feed(self, packets: Sequence[Buffer]) -> int:
        """A reader's batch: process it, account for it, wake consumers once.

        Returns ``GO``, ``PAUSE`` (:meth:`ring_full`) or ``STOP`` (a packet
        ended the stream, which this has already stopped).
        """
        if type(packets) is PacketBatch:
            # One buffer: the core's batch path (runs copied whole).
            n = len(packets)
            running = self.packet_consumer.add_batch(packets)
        elif type(packets) is PlacedBatch:
            # Its first packets were received in place (see protocols/placement.py).
            n = packets.placed + len(packets)
            running = self.packet_consumer.add_placed_batch(packets)
        else:
            add_packet = self.packet_consumer.add_packet
            n = 0
            running = True
            for packet in packets:
                n += 1
                if not add_packet(packet):
                    running = False
                    break
        if n:
            stats = self.stats
            stats[BATCHES] += 1
            if n > stats[MAX_BATCH]:
                stats[MAX_BATCH] = n
            self.batch_done()
        if not running:
            self.stop_from_reader()
            return STOP
        return PAUSE if self.ring_full() else GO

    def placement(self, limit: int) -> Placement | None:
        """Where the next packets go if they continue the current heap (see ``StreamSink``)."""
        return None if self.stopped else self.packet_consumer.placement(limit)

    def batch_done(self) -> None:
        """A batch was fed: hand its results to the consumer (subclasses)."""
        raise NotImplementedError

    def ring_full(self) -> bool:
        """Whether lossless readers should pause (subclasses)."""
        raise NotImplementedError

    async def wait_for_space(self, lossy: bool = False) -> None:
        """Wait until readers may go on (subclasses); ``lossy``: see :meth:`warn_lossy_wait`."""
        raise NotImplementedError

    def count_invalid(self, n: int = 1) -> None:
        self.stats[self._invalid_index] += n

    def count_skipped(self, n: int = 1) -> None:
        self.stats[self._skipped_index] += n

    def warn_lossy_wait(self, what: str) -> None:
        """A UDP reader is about to wait for the consumer: warn, once per stream.

        For a file, a buffer, an in-process queue or TCP, waiting is
        back-pressure and loses nothing: it is only counted (:func:`count_blocked`).
        A UDP reader that waits leaves datagrams to overflow the socket buffer.
        """
        if not self._warned_blocked:
            self._warned_blocked = True
            logger.warning(
                "UDP reader paused by a full %s: the consumer is not keeping up, so the "
                "kernel may drop datagrams meanwhile (counted in the worker_blocked "
                "statistic; logged once per stream)", what,
            )

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
        """Close every reader, then let the subclass finish. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        for reader in self.readers:
            try:
                reader.close()
            except Exception:  # one reader failing to close must not keep the others open
                logger.exception("error closing a reader")
        self.readers.clear()
        self.finish(by_user)

    def finish(self, by_user: bool) -> None:
        """Flush partial data and end the output (subclasses)."""

    def release(self) -> None:
        """The user-facing stream is gone: stop, and free what only it could use."""
        self.stop_threadsafe()
        self.close_handles()

    def close_handles(self) -> None:
        """Close OS handles kept for the user-facing stream (subclasses)."""

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


class _Stream(NetworkReaders, PcapReaders):
    """Base of every receive stream: readers, ``start``, ``stop``, ``stats``, ``config``."""

    #: Default largest UDP datagram accepted by ``add_udp_reader`` (bytes).
    DEFAULT_UDP_MAX_SIZE = 9200
    #: Default socket receive buffer asked for by ``add_udp_reader`` (bytes).
    DEFAULT_UDP_BUFFER_SIZE = 8388608
    #: Default largest packet accepted by ``add_tcp_reader`` (bytes).
    DEFAULT_TCP_MAX_SIZE = 65536
    #: Default socket receive buffer asked for by ``add_tcp_reader`` (bytes).
    DEFAULT_TCP_BUFFER_SIZE = 212992

    _core: ReceiverCore

    def _init_core(self, thread_pool: ThreadPool, core: ReceiverCore) -> None:
        self._thread_pool = thread_pool  # keeps the pool (and its loop) alive as long as the stream
        self._core = core
        self._finalizer = weakref.finalize(self, ReceiverCore.release, core)

    @staticmethod
    def _check_types(thread_pool: object, config: object) -> None:
        if not isinstance(thread_pool, ThreadPool):
            raise TypeError(f"thread_pool must be a spead2.ThreadPool, not {type(thread_pool).__name__}")
        if not isinstance(config, StreamConfig):
            raise TypeError(f"config must be a spead2.recv.StreamConfig, not {type(config).__name__}")

    def _select_loop(self, thread_pool: ThreadPool) -> asyncio.AbstractEventLoop:
        return thread_pool.next_loop()

    @property
    def config(self) -> StreamConfig:
        """A copy of the stream's configuration."""
        return self._core.config.copy()

    @property
    def stats(self) -> StreamStats:
        """A consistent snapshot of the stream's statistics."""
        return self._core.snapshot()

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

    def start(self) -> None:
        """Start the readers (needed only with ``explicit_start``; harmless otherwise)."""
        run_on_loop(self._core.loop, self._core.start)

    def stop(self) -> None:
        """Stop receiving and close every reader."""
        self._core.stop_threadsafe()
