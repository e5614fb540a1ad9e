"""Public asyncio protocols that feed a receive stream, for transports the application owns.

``add_udp_reader`` and ``add_tcp_reader`` open and drive their own sockets
(UDP with ``recvmmsg``: the fast path). These protocols instead plug into
the standard asyncio calls, for a service that owns its sockets, uses a
third-party transport, or serves SPEAD beside other protocols on one loop::

    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())
    await loop.create_datagram_endpoint(
        lambda: spead2.transports.DatagramReceiver(stream), local_addr=("0.0.0.0", 7148)
    )
    await loop.create_server(lambda: spead2.transports.TcpReceiver(stream), port=7149)

Each protocol instance is a reader of the stream: ``stream.stop()`` closes
its transport, and (as with ``add_tcp_reader``) the end of a TCP
connection stops the stream. They must run on the stream's event loop: make
the stream (a ``spead2.recv.asyncio.Stream``) inside that loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from .._log import log_limited
from .base import PAUSE, Reader, StreamSink, _report_crash
from .tcp import _FramingProtocol

__all__ = ["DatagramReceiver", "TcpReceiver"]

#: The reference's defaults for UDP and TCP readers (``Stream.DEFAULT_*_MAX_SIZE``).
_UDP_MAX_SIZE = 9200
_TCP_MAX_SIZE = 65536


class _ProtocolReader(Reader):
    """The stream's view of a protocol instance: data arrive through the protocol's callbacks."""

    def __init__(self, sink: StreamSink) -> None:
        super().__init__(sink)
        self.protocol: DatagramReceiver | TcpReceiver | None = None

    def start(self) -> None:
        """Nothing to start: the application's transport calls the protocol."""

    async def _run(self) -> None:
        """Not used."""

    def close(self) -> None:
        """The stream stops: close the transport."""
        if self.closed:
            return
        self.closed = True
        if self.protocol is not None:
            self.protocol.close()


def _attach(stream: Any) -> _ProtocolReader:
    """A new reader of ``stream``, which must belong to the running loop."""
    core = getattr(stream, "_core", None)
    if core is None or not hasattr(core, "add_reader"):
        raise TypeError(f"needs a spead2 receive stream, not {type(stream).__name__}")
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not core.loop:
        raise RuntimeError(
            "the stream runs on another event loop: make it (a spead2.recv.asyncio.Stream) "
            "inside the loop that runs this protocol"
        )
    reader = _ProtocolReader(core)
    core.add_reader(reader)  # closes it at once if the stream has stopped
    return reader


class DatagramReceiver(asyncio.DatagramProtocol):
    """Feeds each datagram to ``stream`` as one SPEAD packet.

    For ``loop.create_datagram_endpoint(lambda: DatagramReceiver(stream), ...)``.
    Datagrams longer than ``max_size`` are dropped (counted in the
    ``invalid_packets`` statistic where registered). While the stream's ring
    is full, reading pauses where the transport can pause (asyncio's own) and
    the kernel buffers or drops, as with ``add_udp_reader``; on transports
    that cannot pause (uvloop's), heaps completed meanwhile are held until
    the consumer makes room.
    """

    def __init__(self, stream: Any, max_size: int = _UDP_MAX_SIZE) -> None:
        self._max_size = max_size
        self._reader = _attach(stream)
        self._reader.protocol = self
        self._sink = self._reader.sink
        self._transport: asyncio.DatagramTransport | None = None
        self._waiter: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._reader.closed:
            transport.close()
            return
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._reader.closed:
            return
        if len(data) > self._max_size:
            self._sink.count_invalid()
            log_limited(logging.INFO, "udp-truncated", "dropped packet due to truncation")
            return
        if self._sink.feed((data,)) == PAUSE:
            self._pause()

    def error_received(self, exc: Exception) -> None:
        log_limited(logging.WARNING, "udp-protocol-error", "UDP receive error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def _pause(self) -> None:
        transport = self._transport
        pause = getattr(transport, "pause_reading", None)
        if self._waiter is not None or pause is None:
            return
        pause()
        self._waiter = self._sink.loop.create_task(self._wait_for_space())
        self._waiter.add_done_callback(_report_crash)

    async def _wait_for_space(self) -> None:
        await self._sink.wait_for_space(lossy=True)  # the kernel may drop meanwhile
        self._waiter = None
        transport: Any = self._transport  # asyncio's can pause (see _pause); the ABC does not say so
        if transport is not None and not self._reader.closed:
            transport.resume_reading()

    def close(self) -> None:
        """Close the transport (the stream stopped)."""
        waiter = self._waiter
        if waiter is not None and waiter is not asyncio.current_task():
            waiter.cancel()
        transport = self._transport
        self._transport = None
        if transport is not None:
            transport.close()


class TcpReceiver(_FramingProtocol):
    """Frames the SPEAD packets of one TCP connection and feeds them to ``stream``.

    For ``loop.create_server(lambda: TcpReceiver(stream), ...)`` (a new
    instance per accepted connection) or ``loop.create_connection(...)``.
    Packets are framed in place in the protocol's own buffer
    (``asyncio.BufferedProtocol``); packets longer than ``max_size`` are
    skipped. Lossless: while the ring is full the transport stops reading,
    so TCP flow control holds the sender back. The end of the connection
    stops the stream, as with ``add_tcp_reader``.
    """

    def __init__(self, stream: Any, max_size: int = _TCP_MAX_SIZE) -> None:
        reader = _attach(stream)
        super().__init__(cast(Any, reader), max_size)
        reader.protocol = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._reader.closed:
            self.socket = None  # the transport owns it; closing goes through the transport
