"""TCP receive: accept one connection and frame SPEAD packets in place from its byte stream.

The listening socket is created (or duplicated from the caller's) in the
caller's thread; the :class:`TcpReader` accepts exactly one connection on the
stream's loop, closes the listener and reads the connection through an
:class:`asyncio.BufferedProtocol`. The protocol reads straight into its own
buffer and frames packets there (packets back to back, each one's end found
from its header), handing the stream's packet consumer
slices of that buffer; a packet cut by the end of a read stays where it is
until the rest arrives, and only when the buffer's tail runs short are its
bytes moved to the front (into a second buffer, so the move never overlaps).

Lossless: while the heap ring is full the transport stops reading, so TCP
flow control holds the sender back. The end of the connection stops the
stream.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import cast

from .._log import log_limited, logger
from ..protocols.batch import PacketBatch
from ..protocols.packet import PacketError, packet_size
from .base import BATCH_PACKETS, GO, PAUSE, WAIT, Reader, StreamSink, _report_crash, cancel_task
from .sockets import (
    SocketHandoff,
    bound_receive_socket,
    duplicate_socket,
    resolve_endpoint,
    runtime_error,
)

__all__ = ["TcpReader", "tcp_listener_for_port", "tcp_listener_from_user"]

_INFO = logging.INFO
_WARNING = logging.WARNING

#: Initial (and minimum) size of the read buffer: several large packets per read.
READ_BUFFER = 256 * 1024
#: Move a partial packet to the front once less than this is left to read into.
_MIN_READ = 16 * 1024
_HEADER_SIZE = 8
_ACCEPT_RETRY = frozenset(
    {errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNABORTED, errno.EPROTO}
)


# -- listening sockets (in the caller's thread) -----------------------------------


def tcp_listener_for_port(port: int, buffer_size: int, bind_hostname: str) -> socket.socket:
    """A socket listening on ``bind_hostname:port`` (receive buffer set for the connection)."""
    family, sockaddr = resolve_endpoint(bind_hostname, port, socket.SOCK_STREAM)
    # SO_REUSEADDR as a listening socket should have it (and the reference does): a
    # restarted receiver can rebind while old connections linger in TIME_WAIT.
    sock = bound_receive_socket(
        family, socket.SOCK_STREAM, sockaddr, buffer_size,
        reuse_address=sys.platform != "win32", then=_listen,
    )
    sock.setblocking(False)
    return sock


def _listen(sock: socket.socket) -> None:
    try:
        sock.listen()
    except OSError as exc:
        raise runtime_error("listen", exc) from None


def tcp_listener_from_user(acceptor: socket.socket) -> socket.socket:
    """A duplicate of the caller's listening TCP socket (the caller may close theirs)."""
    if acceptor.type != socket.SOCK_STREAM:
        raise TypeError(f"add_tcp_reader needs a TCP (SOCK_STREAM) socket, not {acceptor.type!r}")
    accepting = getattr(socket, "SO_ACCEPTCONN", None)
    if accepting is not None and not acceptor.getsockopt(socket.SOL_SOCKET, accepting):
        raise ValueError("acceptor is not a listening socket (call listen() on it first)")
    sock = duplicate_socket(acceptor)
    sock.setblocking(False)
    return sock


# -- the reader (on the stream's loop) --------------------------------------------


class TcpReader(Reader):
    """Accepts one connection on a listening socket and receives the packets it carries."""

    def __init__(self, sink: StreamSink, handoff: SocketHandoff, max_size: int) -> None:
        super().__init__(sink)
        self._listener: socket.socket | None = handoff.take()
        self._accepting = False
        self._protocol = _FramingProtocol(self, max_size)

    def start(self) -> None:
        """Start waiting for the connection (on the stream's loop)."""
        if self.closed or self._listener is None or self._accepting:
            return
        self.sink.loop.add_reader(self._listener.fileno(), self._on_acceptable)
        self._accepting = True

    def _stop_accepting(self) -> None:
        listener = self._listener
        if listener is None:
            return
        self._listener = None
        try:
            if self._accepting:
                self._accepting = False
                if not self.sink.loop.is_closed():
                    self.sink.loop.remove_reader(listener.fileno())
        finally:
            listener.close()  # even when the loop is already closed

    def _on_acceptable(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            if exc.errno in _ACCEPT_RETRY or isinstance(exc, BlockingIOError):
                return
            logger.error("Error in TCP accept: %s", exc.strerror or exc)
            self.close()
            return
        conn.setblocking(False)
        # Exactly one connection per reader: later ones are refused by the kernel.
        self._stop_accepting()
        self._protocol.socket = conn
        self._task = self.sink.loop.create_task(self._run_connection(conn))
        self._task.add_done_callback(_report_crash)

    async def _run_connection(self, conn: socket.socket) -> None:
        try:
            await self.sink.loop.connect_accepted_socket(lambda: self._protocol, conn)
        except BaseException:
            conn.close()
            raise

    async def _run(self) -> None:
        """Not used: the protocol's callbacks do the work."""

    def drive_poll(self, wake: Callable[[], None]) -> int | None:
        """The listener until a connection is accepted, then the connection."""
        conn = self._protocol.socket
        if conn is None:
            return self._listener.fileno() if self._listener is not None else WAIT
        if self._protocol.has_complete_packet():
            return None  # left in the buffer when the ring filled
        return conn.fileno()

    def drive_step(self) -> None:
        """Accept the pending connection, or feed what it has (as the loop's transport would)."""
        if self.closed:
            return
        protocol = self._protocol
        conn = protocol.socket
        if conn is None:
            if self._listener is not None:
                self._on_acceptable()
            return
        if protocol.has_complete_packet():
            protocol.buffer_updated(0)
            return
        buffer = protocol.get_buffer(-1)
        try:
            n = os.readv(conn.fileno(), [buffer])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            protocol.end_of_stream(exc)
            return
        if n == 0:
            protocol.end_of_stream(None)
        else:
            protocol.buffer_updated(n)

    def close(self) -> None:
        """Close the listener or the connection (on the stream's loop)."""
        if self.closed:
            return
        self.closed = True
        self._stop_accepting()
        self._protocol.close()
        # The connection task is left to finish: the protocol closes a
        # transport that arrives after this, and cancelling it mid-way could
        # leave the accepted socket open.


class _FramingProtocol(asyncio.BufferedProtocol):
    """Frames the packets of one TCP connection in place and feeds them to the stream."""

    def __init__(
        self,
        reader: TcpReader,
        max_size: int,
        capacity: int = READ_BUFFER,
        min_read: int = _MIN_READ,
    ) -> None:
        self._reader = reader
        self._sink = reader.sink
        self._max_size = max_size
        self._min_read = min_read
        self._capacity = capacity
        self._buffer = bytearray(capacity)
        self._view = memoryview(self._buffer)
        self._spare: bytearray | None = None
        self._start = 0  # first byte not yet consumed
        self._end = 0  # end of the bytes received
        self._need = 0  # bytes from _start that the next (incomplete) packet needs
        self._skip = 0  # bytes still to discard of an oversized packet
        self._resyncing = False
        self._paused = False
        self._waiter: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        #: The accepted connection (also owned by the transport once it exists):
        #: closed directly if the loop is gone when the reader closes.
        self.socket: socket.socket | None = None

    # -- asyncio callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but provide its methods.
        tcp = cast(asyncio.Transport, transport)
        if self._reader.closed:
            tcp.abort()
            return
        self._transport = tcp
        if self.has_complete_packet():
            # A blocking consumer drove the connection before the loop got it
            # and left packets behind at a full ring: feed them (or pause).
            self.buffer_updated(0)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._end == 0 and len(self._buffer) > self._capacity:
            # A large packet has been consumed: give its memory back.
            self._buffer = bytearray(self._capacity)
            self._view = memoryview(self._buffer)
            self._spare = None
        if (
            len(self._buffer) - self._end < self._min_read
            or self._start + self._need > len(self._buffer)
        ):
            self._make_room()
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self._end += nbytes
        if self._process():
            self._block()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost ends the stream

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.end_of_stream(exc)

    def end_of_stream(self, exc: Exception | None) -> None:
        """The connection ended (EOF or error): count a cut packet and stop the stream."""
        if self._reader.closed:
            return
        if exc is not None:
            logger.warning("TCP connection lost: %s", exc)
        if self._end > self._start:
            self._sink.count_invalid()
            log_limited(
                _WARNING, "tcp-partial",
                "TCP connection closed in the middle of a packet: discarding %d bytes",
                self._end - self._start,
            )
        self._start = self._end = 0
        self._sink.stop_from_reader()

    # -- framing ----------------------------------------------------------------------

    def _process(self) -> bool:
        """Feed every complete packet received; True if stopped early by a full ring."""
        sink = self._sink
        max_size = self._max_size
        start = self._start
        end = self._end
        data = self._view[:end]  # packet_size measures what is available from len(data)
        need = 0
        starts: list[int] = []
        sizes: list[int] = []
        verdict = GO
        if self._skip:
            k = min(self._skip, end - start)
            start += k
            self._skip -= k
        while start < end:
            try:
                size = packet_size(data, start)
            except PacketError:
                if not self._resyncing:
                    self._resyncing = True
                    sink.count_invalid()
                log_limited(_INFO, "tcp-invalid-header", "discarding packet due to invalid header")
                start += _HEADER_SIZE
                continue
            if size is None:
                # The header (or its item pointers) is not all here yet.
                need = _HEADER_SIZE
                if end - start >= _HEADER_SIZE:
                    need += 8 * int.from_bytes(data[start + 6 : start + 8], "big")
                break
            self._resyncing = False
            if size > max_size:
                sink.count_invalid()
                log_limited(_INFO, "tcp-truncated", "dropping packet due to truncation")
                available = end - start
                if size <= available:
                    start += size
                    continue
                self._skip = size - available
                start = end
                break
            if size > end - start:
                need = size
                break
            starts.append(start)
            sizes.append(size)
            start += size
            if len(starts) == BATCH_PACKETS:
                # The ring is looked at between batches (see docs/differences.md).
                verdict = sink.feed(PacketBatch(data, starts, sizes))
                starts = []
                sizes = []
                if verdict != GO:
                    break
        if start >= end:
            start = end = 0
            need = 0
        self._start = start
        self._end = end
        self._need = need
        if starts or verdict == GO:
            # (An empty batch asks whether the ring is still full.)
            verdict = sink.feed(PacketBatch(data, starts, sizes))
        return verdict == PAUSE

    def has_complete_packet(self) -> bool:
        """Whether a whole packet waits in the buffer (left there when the ring filled)."""
        if self._end - self._start < _HEADER_SIZE:
            return False
        try:
            size = packet_size(self._view[: self._end], self._start)
        except PacketError:
            return True  # processing discards it
        return size is not None and size <= self._end - self._start

    def _make_room(self) -> None:
        """Move the partial packet at ``_start`` to the front of a buffer that can hold it all."""
        start = self._start
        end = self._end
        partial = end - start
        # Grow towards the size the packet needs (at most max_size, or a header's
        # size, at most 512 KiB: larger packets are skipped, never buffered), but
        # no more than double what has arrived of it: memory follows the bytes
        # received, not what a header claims (copies stay linear overall).
        capacity = max(len(self._buffer), min(self._need, 2 * partial + self._min_read))
        if capacity > len(self._buffer):
            target = bytearray(capacity)
            self._spare = None
        else:
            if start == 0:
                return  # already at the front; the packet fits in what is left
            target = self._spare if self._spare is not None else bytearray(capacity)
            self._spare = self._buffer
        target[:partial] = self._view[start:end]
        self._buffer = target
        self._view = memoryview(target)
        self._start = 0
        self._end = partial

    # -- backpressure -----------------------------------------------------------------

    def _block(self) -> None:
        transport = self._transport
        if self._paused or self._reader.closed or transport is None:
            return
        self._paused = True
        transport.pause_reading()
        self._waiter = self._sink.loop.create_task(self._wait_for_space())
        self._waiter.add_done_callback(_report_crash)

    async def _wait_for_space(self) -> None:
        sink = self._sink
        while True:
            await sink.wait_for_space()
            if self._reader.closed:
                return
            if not self._process():
                break
        self._paused = False
        self._waiter = None
        transport = self._transport
        if transport is not None and not self._reader.closed:
            transport.resume_reading()

    def close(self) -> None:
        """Drop the connection (the reader is closing)."""
        transport = self._transport
        sock = self.socket
        self._transport = None
        self.socket = None
        waiter = self._waiter
        if self._sink.loop.is_closed():
            # The stream outlived its loop (e.g. asyncio.run returned): nothing can
            # run there any more, and abort() would schedule connection_lost on it
            # and raise. Close the socket itself, so the peer sees the end at once.
            if sock is not None:
                sock.close()
            if waiter is not None:
                cancel_task(waiter)
            return
        if waiter is not None and waiter is not asyncio.current_task():
            waiter.cancel()
        if transport is not None:
            transport.abort()
