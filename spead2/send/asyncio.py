"""Asyncio send streams: ``async_send_heap(s)`` return futures, work happens on the running loop.

These are subclasses of :class:`spead2.send.Stream` (through the private
:class:`~spead2.send._stream.AsyncStream` driver) but not of the synchronous
stream classes, and have no ``send_heap``/``send_heaps``. Network streams
(``UdpStream``, ``TcpStream``) subclass ``AsyncStream`` the same way, with a
transport implementing the ``AsyncTransport`` interface described in
:mod:`spead2.send._stream`.
"""

from __future__ import annotations

import socket
from typing import Self

from .._thread_pool import ThreadPool
from ..transports.tcp_send import AsyncTcpTransport, tcp_connect_async
from ..transports.udp_send import AsyncUdpTransport
from ._config import StreamConfig
from ._memory_streams import InprocForms, _check_thread_pool
from ._network_streams import (
    TCP_DEFAULT_BUFFER_SIZE,
    UDP_DEFAULT_BUFFER_SIZE,
    Endpoints,
    UdpForms,
    own_transport,
    tcp_connect_args,
    tcp_socket_args,
    use_timer_sleep,
)
from ._stream import AsyncStream

__all__ = ["InprocStream", "TcpStream", "UdpStream"]


class InprocStream(InprocForms, AsyncStream):
    """Asyncio stream that puts packets on in-process queues, one queue per substream.

    The queues are not stopped by the stream.
    """


class UdpStream(UdpForms, AsyncStream):
    """Asyncio stream sending each packet as a UDP datagram to its substream's endpoint.

    The constructor forms are those of :class:`spead2.send.UdpStream`. Sends
    never block the event loop: while the socket buffer is full the driver
    waits for it to drain (backpressure) instead of dropping packets.
    """

    #: Default socket send buffer asked for (bytes).
    DEFAULT_BUFFER_SIZE = UDP_DEFAULT_BUFFER_SIZE

    _transport_class = AsyncUdpTransport


class TcpStream(AsyncStream):
    """Asyncio stream writing packets back to back on a TCP connection; one substream.

    ``TcpStream(thread_pool, socket, config=StreamConfig())`` takes (a
    duplicate of) a connected socket; ``await TcpStream.connect(...)`` opens
    the connection without blocking the loop. Writes never block the loop:
    what the kernel cannot take yet is queued and the driver waits for it.
    The connection is closed when the stream is garbage collected.
    """

    #: Default socket send buffer asked for (bytes).
    DEFAULT_BUFFER_SIZE = TCP_DEFAULT_BUFFER_SIZE

    def __init__(
        self,
        thread_pool: ThreadPool,
        socket: socket.socket,
        config: StreamConfig | None = None,
    ) -> None:
        _check_thread_pool(thread_pool)
        config, sock = tcp_socket_args("TcpStream", (socket,), {"config": config})
        transport = AsyncTcpTransport(sock)
        own_transport(self, transport)
        super().__init__(config, transport)
        use_timer_sleep(self)

    @classmethod
    async def connect(
        cls,
        thread_pool: ThreadPool,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
        buffer_size: int = TCP_DEFAULT_BUFFER_SIZE,
        interface_address: str = "",
    ) -> Self:
        """Connect to the single endpoint in ``endpoints`` and return the stream.

        Arguments as for the connecting form of :class:`spead2.send.TcpStream`.
        A refused connection raises ``ConnectionRefusedError``.
        """
        _check_thread_pool(thread_pool)
        config, (host, port), buffer_size, interface_address = tcp_connect_args(
            "TcpStream.connect",
            (endpoints,),
            {"config": config, "buffer_size": buffer_size, "interface_address": interface_address},
        )
        sock = await tcp_connect_async(host, port, buffer_size, interface_address)
        try:
            return cls(thread_pool, sock, config)
        finally:
            sock.close()  # the stream has its own duplicate
