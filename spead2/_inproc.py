"""``InprocQueue``: an in-process, unbounded, reliable packet queue.

Senders on any thread append packets; receive streams, each on its own event
loop, take them in batches. A waiting reader is woken once per burst (when
the queue goes from empty to non-empty), not once per packet.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Buffer, Callable

from ._errors import Stopped
from ._wakeup import Waiter, wake


class InprocQueue:
    """A queue of packets between senders and receive streams in one process.

    Several senders may share a queue. Several receivers may too, but each
    packet goes to only one of them, so that only works when every heap is a
    single packet.
    """

    def __init__(self) -> None:
        self._packets: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._stopped = False
        self._waiters: list[Waiter] = []
        # Called (from the sender's thread) at the next packet or stop: readers
        # driven by a blocking consumer instead of their event loop wait with these.
        self._callbacks: list[Callable[[], None]] = []

    def add_packet(self, packet: Buffer) -> None:
        """Append a copy of ``packet`` (any bytes-like object).

        Raises :class:`spead2.Stopped` once the queue has been stopped, and
        ``TypeError`` for objects without the buffer protocol (such as ``str``).
        """
        # bytes are immutable, so sharing them is as safe as copying them.
        data = packet if type(packet) is bytes else bytes(memoryview(packet))
        with self._lock:
            if self._stopped:
                raise Stopped("ring buffer has been stopped")
            self._packets.append(data)
            waiters = self._waiters
            callbacks = self._callbacks
            if not waiters and not callbacks:
                return
            self._waiters = []
            self._callbacks = []
        wake(waiters)
        for callback in callbacks:
            callback()

    def stop(self) -> None:
        """Mark the end of the stream; readers stop once they have drained the queue."""
        with self._lock:
            self._stopped = True
            waiters, self._waiters = self._waiters, []
            callbacks, self._callbacks = self._callbacks, []
        wake(waiters)
        for callback in callbacks:
            callback()

    def _take(self, limit: int) -> tuple[list[bytes], bool]:
        """Up to ``limit`` packets, and whether the queue is stopped *and* drained."""
        with self._lock:
            packets = self._packets
            n = min(limit, len(packets))
            batch = [packets.popleft() for _ in range(n)]
            return batch, self._stopped and not packets

    def _ready_or_call(self, callback: Callable[[], None]) -> bool:
        """True if packets are queued or the queue stopped; else ``callback`` is called when either happens."""
        with self._lock:
            if self._packets or self._stopped:
                return True
            if callback not in self._callbacks:
                self._callbacks.append(callback)
            return False

    def _wait(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        """A future on ``loop`` that resolves when packets arrive or the queue stops."""
        future = loop.create_future()
        with self._lock:
            if self._packets or self._stopped:
                future.set_result(None)
            else:
                self._waiters.append((loop, future))
        return future

    def __len__(self) -> int:
        return len(self._packets)
