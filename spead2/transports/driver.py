"""Driving readers without their event loop, for a blocking consumer on the loop's own thread.

``for heap in stream`` on an asyncio stream, inside a coroutine running on
the stream's loop, blocks the only thread that could run the readers. So the
blocking call runs them itself: a small selector loop over the readers'
sockets that calls the same entry points the event loop would call
(:meth:`~.base.Reader.drive_poll` says what each waits for,
:meth:`~.base.Reader.drive_step` does what the loop would do next), until
the consumer's condition holds. It is a second driver of the same readers,
not a second implementation: reader state lives on the readers, so when the
loop runs again it carries on where the blocking call left off.

While it drives, calls that other threads make on the loop (``stop()``,
adding readers) are run by this driver (:class:`~spead2._thread_pool.LoopBusy`),
so they do not wait for a loop that cannot run.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable, Sequence

from .._thread_pool import LoopBusy
from .base import WAIT, Reader

__all__ = ["ReaderDriver"]

_POLL_IN = getattr(select, "POLLIN", 1) | getattr(select, "POLLPRI", 2)


class ReaderDriver:
    """Runs a stream's readers from a blocking call on the loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def wake(self) -> None:
        """Interrupt a wait (any thread)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:  # the pipe is full (a wake-up is pending anyway) or closed
            pass

    def close(self) -> None:
        """Release the wake-up sockets."""
        self._wake_r.close()
        self._wake_w.close()

    def run(
        self, readers: Callable[[], Sequence[Reader]], ready: Callable[[], bool], block: bool
    ) -> None:
        """Step ``readers()`` until ``ready()``.

        Without ``block``, only what can be done without waiting is done. With
        it, waits for the readers' sockets (or a wake-up) as long as it takes;
        a Ctrl-C interrupts the wait. Raises ``RuntimeError`` if a reader can
        only run on the event loop.
        """
        with LoopBusy(self._loop, self.wake) as busy:
            while True:
                busy.run_pending()
                if ready():
                    return
                waits: dict[int, Reader] = {}
                stepped = False
                for reader in list(readers()):
                    if reader.closed:
                        continue
                    try:
                        what = reader.drive_poll(self.wake)
                    except NotImplementedError:
                        raise RuntimeError(
                            f"a blocking get on the stream's own event loop cannot run its "
                            f"{type(reader).__name__}: use 'await stream.get()' (or "
                            "'async for') there"
                        ) from None
                    if what is None:
                        reader.drive_step()
                        stepped = True
                        if ready():
                            break
                    elif what != WAIT:
                        waits.setdefault(what, reader)
                if stepped:
                    continue
                for fd in self._wait(list(waits), None if block else 0.0):
                    reader = waits[fd]
                    if not reader.closed:
                        reader.drive_step()
                if not block and not self._any_ready(list(waits)):
                    busy.run_pending()
                    return

    def _wait(self, fds: list[int], timeout: float | None) -> list[int]:
        """The fds of ``fds`` that are readable (or broken), waiting up to ``timeout``."""
        wake_fd = self._wake_r.fileno()
        ready = _readable([*fds, wake_fd], timeout)
        if wake_fd in ready:
            ready.remove(wake_fd)
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass
        return ready

    def _any_ready(self, fds: list[int]) -> bool:
        return bool(fds) and bool(_readable(fds, 0.0))


def _readable(fds: list[int], timeout: float | None) -> list[int]:
    """The fds that are readable (or in error), after waiting up to ``timeout`` seconds."""
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, _POLL_IN)
        return [fd for fd, _ in poller.poll(None if timeout is None else int(timeout * 1000))]
    return list(select.select(fds, [], [], timeout)[0])  # pragma: no cover - no poll() here
