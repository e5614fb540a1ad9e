"""TCP send: connecting ``TcpStream``'s socket, and the transports that write packets to it.

Packets are written back to back with no extra framing (a receiver finds
each packet's end from its header),
each with ``socket.sendmsg`` on the packetizer's list of buffers. When the
kernel takes only part of a packet, the unsent tail — memoryviews, not
copies — waits in a :class:`streamview.Stream` and is written as the socket
drains: the calling thread waits for that (synchronous streams, ``flush()``),
or the asyncio driver awaits a :class:`~.udp_send.Backlog` future. The
driver's next packet is only handed over once the tail has gone, so the
packet's buffers are never referenced after the send completes (the
transport contract of :mod:`spead2.send._stream`).
"""

from __future__ import annotations

import asyncio
import socket
from itertools import islice

import streamview

from ..protocols.packetizer import Packet
from .sockets import (
    DONTWAIT,
    IOV_MAX,
    Address,
    bind,
    interface_error,
    new_socket,
    resolve_endpoint,
    resolve_endpoint_async,
    set_send_buffer,
    wait_writable,
)
from .udp_send import AsyncSends, Backlog, send_on_closed

__all__ = ["AsyncTcpTransport", "TcpTransport", "tcp_connect", "tcp_connect_async"]

#: A peer that has gone away is an ``OSError(EPIPE)``, never a SIGPIPE.
_NOSIGNAL: int = getattr(socket, "MSG_NOSIGNAL", 0)
_NOWAIT = DONTWAIT | _NOSIGNAL


def _prepare_socket(
    family: socket.AddressFamily, buffer_size: int, interface: Address | None, interface_address: str
) -> socket.socket:
    sock = new_socket(family, socket.SOCK_STREAM)
    try:
        set_send_buffer(sock, buffer_size)
        if interface is not None:
            bind(sock, interface, interface_address)
    except BaseException:
        sock.close()
        raise
    return sock


def _set_nodelay(sock: socket.socket) -> None:
    # Whole packets are written at once; Nagle would only hold back the last
    # packet of a heap waiting for an ACK.
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover - not a TCP/IP socket after all
        pass


def tcp_connect(host: str, port: int, buffer_size: int, interface_address: str) -> socket.socket:
    """A blocking socket connected to ``host:port``, in the calling thread.

    ``interface_address`` (if not empty) is bound first as the source
    address. Resolution and bind failures raise ``RuntimeError``; connection
    failures raise the ``OSError`` itself (e.g. ``ConnectionRefusedError``).
    """
    family, sockaddr = resolve_endpoint(host, port, socket.SOCK_STREAM)
    interface = None
    if interface_address:
        try:
            _, interface = resolve_endpoint(interface_address, 0, socket.SOCK_STREAM, family)
        except ValueError:
            raise interface_error(interface_address) from None
    sock = _prepare_socket(family, buffer_size, interface, interface_address)
    try:
        sock.connect(sockaddr)
        _set_nodelay(sock)
    except BaseException:
        sock.close()
        raise
    return sock


async def tcp_connect_async(
    host: str, port: int, buffer_size: int, interface_address: str
) -> socket.socket:
    """:func:`tcp_connect` without blocking the running event loop."""
    family, sockaddr = await resolve_endpoint_async(host, port, socket.SOCK_STREAM)
    interface = None
    if interface_address:
        try:
            _, interface = await resolve_endpoint_async(
                interface_address, 0, socket.SOCK_STREAM, family
            )
        except ValueError:
            raise interface_error(interface_address) from None
    sock = _prepare_socket(family, buffer_size, interface, interface_address)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, sockaddr)
        # Back to blocking: asyncio sends pass MSG_DONTWAIT, and a blocking
        # flush() can then wait in the kernel.
        sock.setblocking(True)
        _set_nodelay(sock)
    except BaseException:
        sock.close()
        raise
    return sock


class TcpTransport:
    """Writes packets back to back on a connected socket (blocking).

    Owns its socket (close it with :meth:`close`; the peer then sees EOF).
    Serves synchronous streams directly.
    """

    __slots__ = ("_sock", "_fd", "_sendmsg", "_queue")

    num_substreams = 1

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._sendmsg = sock.sendmsg
        #: Unsent bytes (views into packets), oldest first.
        self._queue = streamview.Stream()

    @property
    def socket(self) -> socket.socket:
        """The connected socket."""
        return self._sock

    def send_packet_blocking(self, substream_index: int, packet: Packet) -> None:
        """Write one packet, waiting until the kernel has taken all of it."""
        sent = 0
        if not self._queue and len(packet) <= IOV_MAX:
            try:
                sent = self._sendmsg(packet, (), _NOSIGNAL)
            except BlockingIOError:
                pass  # only for a caller's non-blocking socket
            if sent == sum(map(len, packet)):
                return
        self._queue.writelines(packet)
        self._queue.seek(sent)
        self._drain_blocking()

    send_packet = send_packet_blocking

    def _drain(self, flags: int) -> bool:
        """Write queued bytes until done (``True``) or the socket is full (``False``)."""
        queue = self._queue
        sendmsg = self._sendmsg
        try:
            while queue:
                try:
                    sent = sendmsg(list(islice(queue.views, IOV_MAX)), (), flags)
                except BlockingIOError:
                    return False
                queue.seek(sent)
        except OSError:
            # The connection is broken: what is queued can never be delivered.
            queue.close()
            raise
        return True

    def _drain_blocking(self) -> None:
        while not self._drain(_NOSIGNAL):
            wait_writable(self._fd)

    def close(self) -> None:
        """Close the connection (idempotent) and drop anything unsent; later sends raise."""
        self._sendmsg = send_on_closed
        self._queue.close()
        self._sock.close()


class AsyncTcpTransport(AsyncSends, TcpTransport):
    """The asyncio flavour: ``send_packet`` writes what the kernel takes without blocking.

    The rest of the packet is queued (as views) and ``send_packet`` returns a
    future that completes once it has been written.
    """

    __slots__ = ("_backlog",)

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self._start_async(sock)

    def send_packet(  # type: ignore[override]
        self, substream_index: int, packet: Packet
    ) -> asyncio.Future[None] | None:
        """Write the packet now if the kernel takes all of it, else return a future for the rest."""
        sent = 0
        # A non-empty queue (a tail left by a cancelled wait) must go first.
        if not self._queue and len(packet) <= IOV_MAX:
            try:
                sent = self._sendmsg(packet, (), _NOWAIT)
            except BlockingIOError:
                pass
            if sent == sum(map(len, packet)):
                return None
        self._queue.writelines(packet)
        self._queue.seek(sent)
        backlog = self._backlog = Backlog(asyncio.get_running_loop(), self._fd, self._attempt)
        return backlog.future

    def _attempt(self) -> bool:
        try:
            done = self._drain(_NOWAIT)
        except OSError:
            self._backlog = None
            raise
        if done:
            self._backlog = None
        return done
