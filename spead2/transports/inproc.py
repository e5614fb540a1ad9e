"""Receive from an :class:`spead2.InprocQueue`."""

from __future__ import annotations

from collections.abc import Callable

from .._inproc import InprocQueue
from .base import BATCH_PACKETS, PAUSE, STOP, WAIT, Reader, StreamSink


class InprocReader(Reader):
    """Takes packets from an in-process queue until the queue is stopped and drained.

    Lossless: pauses while the ring is full, leaving packets in the queue.
    """

    def __init__(self, sink: StreamSink, queue: InprocQueue) -> None:
        if not isinstance(queue, InprocQueue):
            raise TypeError(f"add_inproc_reader needs an InprocQueue, not {type(queue).__name__}")
        super().__init__(sink)
        self._queue = queue

    async def _run(self) -> None:
        sink = self.sink
        queue = self._queue
        loop = sink.loop
        paused = False
        while not self.closed:
            if not len(queue) and not queue._stopped:
                await queue._wait(loop)
            elif paused and len(queue):
                # Blocked only now that a packet waits, as the reference's reader
                # blocks at its next heap (a merely full ring counts nothing).
                if sink.feed(()) == PAUSE:  # nothing fed: is the ring still full?
                    await sink.wait_for_space()
                paused = False
            else:
                verdict = self._feed_batch()
                if verdict == STOP:
                    return
                paused = verdict == PAUSE

    def _feed_batch(self) -> int:
        """Feed what the queue holds (one batch at most): :data:`GO`, :data:`PAUSE` or :data:`STOP`."""
        sink = self.sink
        batch, ended = self._queue._take(BATCH_PACKETS)
        verdict = sink.feed(batch)
        if verdict == STOP:
            return STOP
        if ended:
            sink.stop_from_reader()
            return STOP
        return verdict

    def drive_poll(self, wake: Callable[[], None]) -> int | None:
        """Step while the queue has packets (or has stopped); otherwise wait for a sender."""
        return None if self._queue._ready_or_call(wake) else WAIT

    def drive_step(self) -> None:
        """One batch from the queue, as the event loop would feed it."""
        if not self.closed:
            self._feed_batch()
