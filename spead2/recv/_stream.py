"""The ring-buffer receive stream: heaps handed to consumers through a bounded ring."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

from .._errors import Stopped
from .._log import log_limited
from .._thread_pool import ThreadPool
from ..protocols.assembler import HeapAssembler, stream_stat_configs
from ..protocols.heaps import HeapBase
from ..transports.driver import ReaderDriver
from ._config import RingStreamConfig, StreamConfig
from ._receiver import ReceiverCore, _Stream, count_blocked
from ._ring import HeapRing


class StreamCore(ReceiverCore):
    """A receive core whose assembler puts completed heaps in a ring."""

    assembler: HeapAssembler

    def __init__(
        self, loop: asyncio.AbstractEventLoop, config: StreamConfig, ring_config: RingStreamConfig
    ) -> None:
        super().__init__(loop, config, stream_stat_configs(config))
        self.ring_config = ring_config
        # Counted when a completed heap finds the ring full, as the reference's
        # reader blocks then: not merely because the ring filled up. (A partial
        # over the list, not a bound method: the ring must not keep the core alive.)
        self.ring = HeapRing(
            ring_config.heaps, loop, functools.partial(count_blocked, self.stats, "ringbuffer")
        )
        self.assembler = HeapAssembler(
            config, ring_config, self.ring.put, self.stats, log_limited, self.ring.put_many
        )
        self.packet_consumer = self.assembler
        self._driver: ReaderDriver | None = None

    def batch_done(self) -> None:
        self.ring.publish()

    def ring_full(self) -> bool:
        return self.ring.full()

    async def wait_for_space(self, lossy: bool = False) -> None:
        if not self.ring.holding():
            # A reader pausing at a full ring is blocked, as the reference's
            # would be at its next heap: counted once per pause (a heap held
            # beyond the capacity was counted when it was held).
            count_blocked(self.stats, "ringbuffer")
        if lossy:
            self.warn_lossy_wait("ringbuffer")
        await self.ring.wait_space()

    def close_handles(self) -> None:
        # The readiness pipe behind Stream.fd serves only the user's object.
        self.ring.close_fd()
        if self._driver is not None:
            self._driver.close()

    def get_driven(self, block: bool) -> HeapBase:
        """The next heap for a blocking consumer on the loop's own thread, running the readers itself.

        ``block``: wait as long as it takes (``Stopped`` at the end); else
        only what can be done now (``Empty`` if no heap came of it).
        """
        ring = self.ring
        if not ring.size() and not ring.stopped:
            if block and not self.started:
                raise RuntimeError(
                    "the stream has not been started (explicit_start): a blocking get on "
                    "its own event loop would never return"
                )
            if self._driver is None:
                self._driver = ReaderDriver(self.loop)
            self._driver.run(
                lambda: self.readers if self.started else (),
                lambda: bool(ring.size()) or ring.stopped,
                block,
            )
        return ring.get_nowait()

    def finish(self, by_user: bool) -> None:
        # A user's stop counts partial heaps but does not deliver them; a stop
        # from the network side (end of input, stop item) delivers them as
        # incomplete heaps when the ring config asks for that.
        self.assembler.flush(deliver_incomplete=not by_user)
        self.ring.stop(drop_held=by_user)


class Stream(_Stream):
    """A receive stream whose heaps are consumed through a ring buffer.

    The protocol work runs on an event-loop thread of ``thread_pool``;
    :meth:`get` blocks the calling thread (and stays interruptible by Ctrl-C).
    """

    _core: StreamCore

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
        config = StreamConfig() if config is None else config
        ring_config = RingStreamConfig() if ring_config is None else ring_config
        self._check_types(thread_pool, config)
        if not isinstance(ring_config, RingStreamConfig):
            raise TypeError(
                f"ring_config must be a spead2.recv.RingStreamConfig, not {type(ring_config).__name__}"
            )
        loop = self._select_loop(thread_pool)
        self._init_core(thread_pool, StreamCore(loop, config.copy(), ring_config.copy()))

    @property
    def ring_config(self) -> RingStreamConfig:
        """A copy of the stream's ring configuration."""
        return self._core.ring_config.copy()

    @property
    def ringbuffer(self) -> Stream.Ringbuffer:
        """The ring buffer's occupancy."""
        return Stream.Ringbuffer(self._core.ring)

    @property
    def fd(self) -> int:
        """A file descriptor that is readable while heaps may be available. Do not read it."""
        return self._core.ring.signal_fd()

    def stop(self) -> None:
        """Stop receiving and close every reader. Queued heaps stay retrievable."""
        self._core.stop_threadsafe()

    def get(self) -> HeapBase:
        """The next heap, blocking; ``spead2.Stopped`` once stopped and drained."""
        return self._core.ring.get()

    def get_nowait(self) -> HeapBase:
        """The next heap; ``spead2.Empty`` if none is ready, ``spead2.Stopped`` at the end."""
        return self._core.ring.get_nowait()

    def __iter__(self) -> Iterator[HeapBase]:
        return self

    def __next__(self) -> HeapBase:
        try:
            return self._core.ring.get()
        except Stopped:
            raise StopIteration from None
