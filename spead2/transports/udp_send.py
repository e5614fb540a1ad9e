"""UDP send: the transports that send datagrams, and the backlog both send transports share.

The sockets are set up in the caller's thread with the helpers of
:mod:`.sockets` (so resolution, bind and option errors raise to the caller).

Every packet goes to the kernel as the packetizer's list of buffers with one
``socket.sendmsg`` (scatter/gather): header bytes plus slices of the item
buffers, never joined. Synchronous sends block in the kernel; asyncio sends
use ``MSG_DONTWAIT`` so the event loop never blocks, and when the socket
buffer is full they hand the driver an awaitable that completes once the
packet has gone (backpressure), see :class:`Backlog`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from typing import NoReturn

from ..protocols.packetizer import Packet
from .sockets import DONTWAIT, IOV_MAX, Address, wait_writable

__all__ = [
    "AsyncSends",
    "AsyncUdpTransport",
    "Backlog",
    "UdpTransport",
]

# -- waiting on the event loop -----------------------------------------------------


class Backlog:
    """A send the kernel could not take at once, retried whenever the socket is writable.

    ``attempt()`` sends what it can and returns ``True`` once everything has
    gone (it raises ``OSError`` on failure). :attr:`future` completes then
    (or fails with the error); it is what the transport hands the driver to
    await. Cancelling the future stops the retries.
    """

    __slots__ = ("future", "_loop", "_fd", "_attempt")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, fd: int, attempt: Callable[[], bool]
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._attempt = attempt
        self.future: asyncio.Future[None] = loop.create_future()
        loop.add_writer(fd, self._on_writable)
        self.future.add_done_callback(self._stop)

    def _on_writable(self) -> None:
        if self.future.done():
            return
        try:
            done = self._attempt()
        except OSError as exc:
            self.future.set_exception(exc)
        else:
            if done:
                self.future.set_result(None)

    def _stop(self, future: asyncio.Future[None]) -> None:
        self._loop.remove_writer(self._fd)

    def finish_blocking(self) -> None:
        """Complete the send now, blocking the thread (for a ``flush()`` on the loop's thread).

        The future is resolved either way; an error is raised to the caller.
        """
        fd = self._fd
        try:
            while not self.future.done() and not self._attempt():
                wait_writable(fd)
        finally:
            if not self.future.done():
                self.future.set_result(None)


class AsyncSends:
    """What an asyncio send transport adds to its blocking base (UDP's or TCP's).

    At most one send waits on the loop at a time, in a :class:`Backlog`
    (``_backlog``, a slot of the transport); a blocking send (``flush()`` on
    the loop's own thread) finishes that one first, then sends as the base does.
    """

    __slots__ = ()

    _backlog: Backlog | None

    # The ``_backlog`` slot is the transport's own: a mixin with a non-empty
    # __slots__ could not be combined with the base's.
    def _start_async(self, sock: socket.socket) -> None:
        self._backlog = None  # type: ignore[misc]
        if DONTWAIT == 0:  # pragma: no cover - platforms without MSG_DONTWAIT
            sock.setblocking(False)

    def send_packet_blocking(self, substream_index: int, packet: Packet) -> None:
        """Send one packet, blocking; one still waiting on the loop goes first."""
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None  # type: ignore[misc]
            backlog.finish_blocking()
        super().send_packet_blocking(substream_index, packet)  # type: ignore[misc]


# -- transports ----------------------------------------------------------------


#: What a send on a released transport raises (a user's thread may still be sending
#: on a stream that has been garbage collected or whose socket was closed under it).
CLOSED_MESSAGE = "the send stream has been closed: its socket was released"


def send_on_closed(*args: object) -> NoReturn:
    """Stands in for a closed transport's ``sendmsg``: a clear error, not ``EBADF``."""
    raise RuntimeError(CLOSED_MESSAGE)


class UdpTransport:
    """Sends each packet as one datagram to the endpoint of its substream (blocking).

    Owns its socket (close it with :meth:`close`). Serves synchronous
    streams directly: ``send_packet`` blocks while the socket buffer is full.
    """

    __slots__ = ("_sock", "_fd", "_addrs", "num_substreams", "_sendmsg")

    def __init__(self, sock: socket.socket, addrs: Sequence[Address]) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._addrs = list(addrs)
        self.num_substreams = len(self._addrs)
        self._sendmsg = sock.sendmsg

    @property
    def socket(self) -> socket.socket:
        """The socket packets are sent from."""
        return self._sock

    def send_packet_blocking(self, substream_index: int, packet: Packet) -> None:
        """Send one datagram, waiting while the socket buffer is full.

        An oversized datagram raises ``OSError(EMSGSIZE)``.
        """
        if len(packet) > IOV_MAX:
            packet = [b"".join(packet)]  # one datagram must be one sendmsg
        addr = self._addrs[substream_index]
        sendmsg = self._sendmsg
        retried = False
        while True:
            try:
                sendmsg(packet, (), 0, addr)
                return
            except BlockingIOError:
                # Only for a caller's non-blocking socket: ours block in the kernel.
                wait_writable(self._fd)
            except ConnectionRefusedError:
                # An ICMP error from an earlier datagram, reported on a caller's
                # connected socket: it says nothing about this one, so retry once.
                if retried:
                    raise
                retried = True

    send_packet = send_packet_blocking

    def close(self) -> None:
        """Close the socket (idempotent); later sends raise ``RuntimeError``."""
        self._sendmsg = send_on_closed
        self._sock.close()


class AsyncUdpTransport(AsyncSends, UdpTransport):
    """The asyncio flavour: ``send_packet`` never blocks the event loop.

    When the socket buffer is full the packet waits in a :class:`Backlog`
    (the packet's buffers stay referenced, not copied, until it has gone)
    and ``send_packet`` returns its future for the driver to await.
    """

    __slots__ = ("_backlog",)

    def __init__(self, sock: socket.socket, addrs: Sequence[Address]) -> None:
        super().__init__(sock, addrs)
        self._start_async(sock)

    def send_packet(  # type: ignore[override]
        self, substream_index: int, packet: Packet
    ) -> asyncio.Future[None] | None:
        """Send one datagram now if the kernel takes it, else return a future for when it has."""
        if len(packet) > IOV_MAX:
            packet = [b"".join(packet)]
        addr = self._addrs[substream_index]
        try:
            self._sendmsg(packet, (), DONTWAIT, addr)
            return None
        except BlockingIOError:
            return self._wait(packet, addr, retried=False)
        except ConnectionRefusedError:
            # A stale ICMP error (see UdpTransport): one more try, when writable.
            return self._wait(packet, addr, retried=True)

    def _wait(self, packet: Packet, addr: Address, retried: bool) -> asyncio.Future[None]:
        sendmsg = self._sendmsg

        def attempt() -> bool:
            nonlocal retried
            try:
                sendmsg(packet, (), DONTWAIT, addr)
            except BlockingIOError:
                return False
            except OSError as exc:
                if isinstance(exc, ConnectionRefusedError) and not retried:
                    retried = True
                    return False
                self._backlog = None
                raise
            self._backlog = None
            return True

        backlog = self._backlog = Backlog(asyncio.get_running_loop(), self._fd, attempt)
        return backlog.future
