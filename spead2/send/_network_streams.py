"""Network send streams: :class:`UdpStream` and :class:`TcpStream` (synchronous), and their set-up.

The reference's constructors are overloaded (pybind11 picks the first
overload whose parameters accept the arguments' *types*);
:func:`~spead2.protocols.arguments.resolve_overload` does the same, so for
example ``UdpStream(pool, endpoints, config, 524288, 4)`` is the
multicast-TTL form. Once a form is chosen, out-of-range values
are ``ValueError`` naming the parameter. The functions that turn the
arguments into an open socket (:func:`open_udp`, :func:`open_tcp`,
:func:`tcp_connect_args`) are shared with the asyncio streams in
:mod:`spead2.send.asyncio`; the sockets are created in the caller's thread,
so their errors raise to the caller.
"""

from __future__ import annotations

import operator
import socket
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, overload

from .._thread_pool import ThreadPool
from ..protocols.arguments import (
    REQUIRED,
    ArgumentRangeError,
    MulticastHopsError,
    Overload,
    OverloadRules,
    Param,
    is_int,
    resolve_overload,
)
from ..transports.sockets import (
    Address,
    bind_interface,
    configure_ipv4_multicast,
    configure_ipv6_multicast,
    configure_multicast_ttl,
    duplicate_socket,
    ip_of,
    new_socket,
    resolve_endpoint,
    set_send_buffer,
)
from ..transports.tcp_send import TcpTransport, tcp_connect
from ..transports.timer import TimerSleeper
from ..transports.udp_send import UdpTransport
from ._config import StreamConfig
from ._memory_streams import _check_thread_pool
from ._stream import AsyncStream, SyncStream

__all__ = ["TcpStream", "UdpStream"]

UDP_DEFAULT_BUFFER_SIZE = 524288
TCP_DEFAULT_BUFFER_SIZE = 212992

Endpoints = Sequence[tuple[str, int]]

# -- overload resolution ---------------------------------------------------------------

def _is_endpoints(value: object) -> bool:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return False
    for endpoint in value:
        if isinstance(endpoint, (str, bytes)) or not isinstance(endpoint, Sequence):
            return False
        if len(endpoint) != 2 or not isinstance(endpoint[0], str) or not is_int(endpoint[1]):
            return False
    return True


def _is_socket_of(kind: socket.SocketKind) -> Callable[[object], bool]:
    return lambda value: isinstance(value, socket.socket) and value.type == kind


#: Parameter kinds: the type name pybind11 shows, and the check of an argument.
_RULES = OverloadRules(
    kinds={
        "int": ("int", is_int),
        "str": ("str", lambda value: isinstance(value, str)),
        "endpoints": ("list[tuple[str, int]]", _is_endpoints),
        "config": ("StreamConfig", lambda value: value is None or isinstance(value, StreamConfig)),
        "udp socket": ("socket.socket (SOCK_DGRAM)", _is_socket_of(socket.SOCK_DGRAM)),
        "tcp socket": ("socket.socket (SOCK_STREAM)", _is_socket_of(socket.SOCK_STREAM)),
    },
    # Inclusive bounds of integer parameters (the reference's C++ types).
    bounds={
        "buffer_size": (0, 2**63 - 1),
        "ttl": (0, 255),
        "interface_index": (0, 2**32 - 1),
    },
    # The reference raises IndexError for this one (a range check of its own).
    range_errors={"ttl": (MulticastHopsError, "multicast hops value out of range: ")},
    constructor=True,
    leading=("thread_pool: spead2.ThreadPool",),
    default_names={"config": "StreamConfig()"},
)


def _endpoint_list(name: str, endpoints: Endpoints) -> list[tuple[str, int]]:
    result = []
    for host, port in endpoints:
        port = operator.index(port)
        if not 0 <= port <= 65535:
            raise ArgumentRangeError(f"{name}: port must be in the range [0, 65535], not {port}")
        result.append((host, port))
    return result


# -- UDP ---------------------------------------------------------------------------

_UDP_COMMON: list[Param] = [
    ("endpoints", "endpoints", REQUIRED),
    ("config", "config", None),
    ("buffer_size", "int", UDP_DEFAULT_BUFFER_SIZE),
]
_UDP_OVERLOADS = [
    Overload([*_UDP_COMMON, ("interface_address", "str", "")]),
    Overload([*_UDP_COMMON, ("ttl", "int", REQUIRED)]),
    Overload([*_UDP_COMMON, ("ttl", "int", REQUIRED), ("interface_address", "str", REQUIRED)]),
    Overload([*_UDP_COMMON, ("ttl", "int", REQUIRED), ("interface_index", "int", REQUIRED)]),
    Overload([
        ("socket", "udp socket", REQUIRED),
        ("endpoints", "endpoints", REQUIRED),
        ("config", "config", None),
    ]),
]
# Indices of the forms above.
_PLAIN, _TTL, _TTL_IPV4_INTERFACE, _TTL_IPV6_INTERFACE, _SOCKET = range(5)


def _resolve_udp_endpoints(
    endpoints: list[tuple[str, int]], family: socket.AddressFamily | None
) -> tuple[socket.AddressFamily, list[Address]]:
    if not endpoints:
        raise ValueError("Endpoint list must be non-empty")
    addrs: list[Address] = []
    for host, port in endpoints:
        # Later endpoints must resolve to the first one's family (or the socket's).
        family, addr = resolve_endpoint(host, port, socket.SOCK_DGRAM, family)
        addrs.append(addr)
    assert family is not None
    return family, addrs


def _check_multicast(addrs: list[Address], version: int | None) -> None:
    for addr in addrs:
        ip = ip_of(addr)
        if not ip.is_multicast or (version is not None and ip.version != version):
            kind = f"an IPv{version} multicast" if version else "a multicast"
            raise ValueError(f"endpoint is not {kind} address: {addr[0]!r}")


def open_udp(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[StreamConfig | None, socket.socket, list[Address]]:
    """Resolve a ``UdpStream`` constructor call (after ``thread_pool``).

    Returns the config, an open UDP socket the caller owns, and one resolved
    address per substream.
    """
    form, a = resolve_overload(name, _UDP_OVERLOADS, args, kwargs, _RULES)
    endpoints = _endpoint_list(name, a["endpoints"])
    if form == _SOCKET:
        user_socket: socket.socket = a["socket"]
        _, addrs = _resolve_udp_endpoints(endpoints, user_socket.family)
        return a["config"], duplicate_socket(user_socket), addrs
    family, addrs = _resolve_udp_endpoints(endpoints, None)
    if form == _TTL:
        _check_multicast(addrs, None)
    elif form == _TTL_IPV4_INTERFACE:
        _check_multicast(addrs, 4)
    elif form == _TTL_IPV6_INTERFACE:
        _check_multicast(addrs, 6)
    sock = new_socket(family, socket.SOCK_DGRAM)
    try:
        set_send_buffer(sock, a["buffer_size"])
        if form == _PLAIN:
            if a["interface_address"]:
                bind_interface(sock, a["interface_address"])
        else:
            configure_multicast_ttl(sock, a["ttl"])
            if form == _TTL_IPV4_INTERFACE:
                configure_ipv4_multicast(sock, a["interface_address"])
            elif form == _TTL_IPV6_INTERFACE:
                configure_ipv6_multicast(sock, a["interface_index"])
    except BaseException:
        sock.close()
        raise
    return a["config"], sock, addrs


# -- TCP ---------------------------------------------------------------------------

_TCP_SOCKET_OVERLOAD = Overload([("socket", "tcp socket", REQUIRED), ("config", "config", None)])
_TCP_CONNECT_OVERLOAD = Overload([
    ("endpoints", "endpoints", REQUIRED),
    ("config", "config", None),
    ("buffer_size", "int", TCP_DEFAULT_BUFFER_SIZE),
    ("interface_address", "str", ""),
])


def _connect_values(
    name: str, a: Mapping[str, Any]
) -> tuple[StreamConfig | None, tuple[str, int], int, str]:
    endpoints = _endpoint_list(name, a["endpoints"])
    if len(endpoints) != 1:
        raise ValueError(
            f"endpoints must contain exactly one element (got {len(endpoints)} endpoints)"
        )
    return a["config"], endpoints[0], a["buffer_size"], a["interface_address"]


def tcp_socket_args(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[StreamConfig | None, socket.socket]:
    """Resolve ``TcpStream(thread_pool, socket, config)``: the config and a duplicate of the socket."""
    _, a = resolve_overload(name, [_TCP_SOCKET_OVERLOAD], args, kwargs, _RULES)
    return a["config"], duplicate_socket(a["socket"])


def tcp_connect_args(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[StreamConfig | None, tuple[str, int], int, str]:
    """Resolve the connecting form: ``(config, (host, port), buffer_size, interface_address)``."""
    _, a = resolve_overload(name, [_TCP_CONNECT_OVERLOAD], args, kwargs, _RULES)
    return _connect_values(name, a)


def open_tcp(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[StreamConfig | None, socket.socket]:
    """Resolve a synchronous ``TcpStream`` constructor call; connects in the calling thread."""
    overloads = [_TCP_SOCKET_OVERLOAD, _TCP_CONNECT_OVERLOAD]
    form, a = resolve_overload(name, overloads, args, kwargs, _RULES)
    if form == 0:
        return a["config"], duplicate_socket(a["socket"])
    config, (host, port), buffer_size, interface_address = _connect_values(name, a)
    return config, tcp_connect(host, port, buffer_size, interface_address)


# -- the streams ---------------------------------------------------------------------


def own_transport(stream: object, transport: UdpTransport | TcpTransport) -> None:
    """Close ``transport`` (its socket) when ``stream`` is garbage collected."""
    _release_with(stream, transport.close)


def use_timer_sleep(stream: SyncStream | AsyncStream) -> None:
    """Make ``stream``'s rate limiter sleep on a timerfd released with the stream, where there is one.

    ``time.sleep`` and ``asyncio.sleep`` are far too coarse for rate limiting
    at Gb/s (see :class:`~spead2.transports.timer.TimerSleeper`).
    """
    if not TimerSleeper.available:
        return
    sleeper = TimerSleeper()
    _release_with(stream, sleeper.close)
    if isinstance(stream, AsyncStream):
        stream._sleep = sleeper.async_sleep
    else:
        stream._sleep = sleeper.sleep


def _release_with(stream: object, close: Callable[[], None]) -> None:
    # Not at interpreter exit: a user's daemon thread may still be sending on the
    # stream then, and the process's exit releases the descriptor anyway.
    weakref.finalize(stream, close).atexit = False


class UdpForms:
    """The constructor forms of ``UdpStream``, shared by the synchronous and asyncio classes.

    Comes before :class:`SyncStream` or :class:`AsyncStream` in the bases;
    ``_transport_class`` says which transport the stream drives.
    """

    _transport_class: ClassVar[type[UdpTransport]]

    # The reference's forms, for editors and type checkers; the implementation
    # resolves them at run time as the reference does (open_udp).
    @overload
    def __init__(
        self, thread_pool: ThreadPool, endpoints: Endpoints, config: StreamConfig | None = ...,
        buffer_size: int = ..., interface_address: str = ...,
    ) -> None: ...
    @overload
    def __init__(
        self, thread_pool: ThreadPool, endpoints: Endpoints, config: StreamConfig | None = ...,
        buffer_size: int = ..., *, ttl: int, interface_address: str = ...,
    ) -> None: ...
    @overload
    def __init__(
        self, thread_pool: ThreadPool, endpoints: Endpoints, config: StreamConfig | None = ...,
        buffer_size: int = ..., *, ttl: int, interface_index: int,
    ) -> None: ...
    @overload
    def __init__(
        self, thread_pool: ThreadPool, socket: socket.socket, endpoints: Endpoints,
        config: StreamConfig | None = ...,
    ) -> None: ...

    def __init__(self, thread_pool: ThreadPool, *args: Any, **kwargs: Any) -> None:
        _check_thread_pool(thread_pool)
        config, sock, addrs = open_udp("UdpStream", args, kwargs)
        transport = self._transport_class(sock, addrs)
        own_transport(self, transport)
        # The driver base that follows in the MRO (SyncStream or AsyncStream).
        super().__init__(config, transport)  # type: ignore[call-arg]
        use_timer_sleep(self)  # type: ignore[arg-type]


class UdpStream(UdpForms, SyncStream):
    """Sends each packet as a UDP datagram to the endpoint of its heap's substream.

    ``endpoints`` is a non-empty list of ``(host, port)``, one per substream;
    all must be of one address family. Forms (as in the reference):

    * ``UdpStream(thread_pool, endpoints, config=StreamConfig(), buffer_size=524288,
      interface_address='')`` — ``interface_address`` is bound as the source address;
    * ``UdpStream(thread_pool, endpoints, config, buffer_size, *, ttl)`` — multicast
      endpoints with that TTL (IPv4) or hop limit (IPv6);
    * ``UdpStream(thread_pool, endpoints, config, buffer_size, ttl, interface_address)``
      — IPv4 multicast out of the interface with that address;
    * ``UdpStream(thread_pool, endpoints, config, buffer_size, ttl, interface_index)``
      — IPv6 multicast out of that interface;
    * ``UdpStream(thread_pool, socket, endpoints, config=StreamConfig())`` — send from
      (a duplicate of) an existing UDP socket, whose options the caller sets.

    ``buffer_size`` is the socket send buffer (0 keeps the OS default). A
    packet larger than a datagram can be fails its heap with
    ``OSError(EMSGSIZE)``.
    """

    #: Default socket send buffer asked for (bytes).
    DEFAULT_BUFFER_SIZE = UDP_DEFAULT_BUFFER_SIZE

    _transport_class = UdpTransport


class TcpStream(SyncStream):
    """Writes packets back to back on a TCP connection (no extra framing); one substream.

    * ``TcpStream(thread_pool, socket, config=StreamConfig())`` — an already
      connected socket (duplicated: the caller may close theirs);
    * ``TcpStream(thread_pool, endpoints, config=StreamConfig(), buffer_size=212992,
      interface_address='')`` — connect (in the calling thread) to the single
      endpoint; a refused connection raises ``ConnectionRefusedError``.

    The connection is closed (the receiver sees end of stream) when the
    stream is garbage collected. Receivers accept packets up to 65536 bytes
    by default, so a ``max_packet_size`` larger than UDP's suits TCP.
    """

    #: Default socket send buffer asked for (bytes).
    DEFAULT_BUFFER_SIZE = TCP_DEFAULT_BUFFER_SIZE

    @overload
    def __init__(
        self, thread_pool: ThreadPool, socket: socket.socket, config: StreamConfig | None = ...
    ) -> None: ...
    @overload
    def __init__(
        self, thread_pool: ThreadPool, endpoints: Endpoints, config: StreamConfig | None = ...,
        buffer_size: int = ..., interface_address: str = ...,
    ) -> None: ...

    def __init__(self, thread_pool: ThreadPool, *args: Any, **kwargs: Any) -> None:
        _check_thread_pool(thread_pool)
        config, sock = open_tcp("TcpStream", args, kwargs)
        transport = TcpTransport(sock)
        own_transport(self, transport)
        super().__init__(config, transport)
        use_timer_sleep(self)
