"""Network send streams: :class:`UdpStream` and :class:`TcpStream` (synchronous), and their set-up.

The reference's constructors are overloaded (pybind11 picks the first
overload whose parameters accept the arguments' *types*); :func:`_resolve`
does the same, so for example ``UdpStream(pool, endpoints, config, 524288,
4)`` is the multicast-TTL form. Once a form is chosen, out-of-range values
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
from ..protocols.arguments import ArgumentRangeError, MulticastHopsError
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

_REQUIRED: Any = object()


def _is_int(value: object) -> bool:
    if isinstance(value, (str, bytes, bytearray, float)):
        return False
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _is_endpoints(value: object) -> bool:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return False
    for endpoint in value:
        if isinstance(endpoint, (str, bytes)) or not isinstance(endpoint, Sequence):
            return False
        if len(endpoint) != 2 or not isinstance(endpoint[0], str) or not _is_int(endpoint[1]):
            return False
    return True


_CHECKS: dict[str, Callable[[object], bool]] = {
    "int": _is_int,
    "str": lambda value: isinstance(value, str),
    "endpoints": _is_endpoints,
    "config": lambda value: value is None or isinstance(value, StreamConfig),
    "udp socket": lambda value: isinstance(value, socket.socket)
    and value.type == socket.SOCK_DGRAM,
    "tcp socket": lambda value: isinstance(value, socket.socket)
    and value.type == socket.SOCK_STREAM,
}
_TYPE_NAMES = {
    "int": "int",
    "str": "str",
    "endpoints": "list[tuple[str, int]]",
    "config": "StreamConfig",
    "udp socket": "socket.socket (SOCK_DGRAM)",
    "tcp socket": "socket.socket (SOCK_STREAM)",
}
#: Inclusive bounds of integer parameters (the reference's C++ types).
_BOUNDS = {
    "buffer_size": (0, 2**63 - 1),
    "ttl": (0, 255),
    "interface_index": (0, 2**32 - 1),
}

_Param = tuple[str, str, object]  # name, kind, default


class _Overload:
    """One form of an overloaded constructor."""

    def __init__(self, params: Sequence[_Param]) -> None:
        self.params = params
        self.names = {name for name, _, _ in params}

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The arguments by name, or ``None`` if their number, names or types do not fit."""
        if len(args) > len(self.params) or not self.names.issuperset(kwargs):
            return None
        values = {name: value for (name, _, _), value in zip(self.params, args, strict=False)}
        for name, value in kwargs.items():
            if name in values:
                return None
            values[name] = value
        for name, kind, default in self.params:
            if name in values:
                if not _CHECKS[kind](values[name]):
                    return None
            elif default is _REQUIRED:
                return None
            else:
                values[name] = default
        return values

    def describe(self) -> str:
        parts = ["thread_pool: spead2.ThreadPool"]
        for name, kind, default in self.params:
            part = f"{name}: {_TYPE_NAMES[kind]}"
            if default is not _REQUIRED:
                part += " = StreamConfig()" if kind == "config" else f" = {default!r}"
            parts.append(part)
        return f"({', '.join(parts)})"


def _resolve(
    name: str, overloads: Sequence[_Overload], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[int, dict[str, Any]]:
    """The index of the first overload that accepts the arguments, and the arguments by name."""
    for index, candidate in enumerate(overloads):
        values = candidate.bind(args, kwargs)
        if values is None:
            continue
        for key, value in values.items():
            bounds = _BOUNDS.get(key)
            if bounds is not None:
                value = values[key] = operator.index(value)
                if not bounds[0] <= value <= bounds[1]:
                    message = f"{key} must be in the range [{bounds[0]}, {bounds[1]}], not {value}"
                    if key == "ttl":
                        # The reference raises IndexError for this one (a range check of its own).
                        message = f"multicast hops value out of range: {message}"
                        raise MulticastHopsError(f"{name}: {message}")
                    raise ArgumentRangeError(f"{name}: {message}")
        return index, values
    supported = "\n".join(f"    {i}. {name}{o.describe()}" for i, o in enumerate(overloads, 1))
    invoked = ", ".join(repr(a) for a in args)
    if kwargs:
        invoked += "; kwargs: " + ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    raise TypeError(
        f"{name}(): incompatible constructor arguments. The following argument types are "
        f"supported:\n{supported}\n\nInvoked with: {invoked}"
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

_UDP_COMMON: list[_Param] = [
    ("endpoints", "endpoints", _REQUIRED),
    ("config", "config", None),
    ("buffer_size", "int", UDP_DEFAULT_BUFFER_SIZE),
]
_UDP_OVERLOADS = [
    _Overload([*_UDP_COMMON, ("interface_address", "str", "")]),
    _Overload([*_UDP_COMMON, ("ttl", "int", _REQUIRED)]),
    _Overload([*_UDP_COMMON, ("ttl", "int", _REQUIRED), ("interface_address", "str", _REQUIRED)]),
    _Overload([*_UDP_COMMON, ("ttl", "int", _REQUIRED), ("interface_index", "int", _REQUIRED)]),
    _Overload([
        ("socket", "udp socket", _REQUIRED),
        ("endpoints", "endpoints", _REQUIRED),
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
    form, a = _resolve(name, _UDP_OVERLOADS, args, kwargs)
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

_TCP_SOCKET_OVERLOAD = _Overload([("socket", "tcp socket", _REQUIRED), ("config", "config", None)])
_TCP_CONNECT_OVERLOAD = _Overload([
    ("endpoints", "endpoints", _REQUIRED),
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
    _, a = _resolve(name, [_TCP_SOCKET_OVERLOAD], args, kwargs)
    return a["config"], duplicate_socket(a["socket"])


def tcp_connect_args(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[StreamConfig | None, tuple[str, int], int, str]:
    """Resolve the connecting form: ``(config, (host, port), buffer_size, interface_address)``."""
    _, a = _resolve(name, [_TCP_CONNECT_OVERLOAD], args, kwargs)
    return _connect_values(name, a)


def open_tcp(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[StreamConfig | None, socket.socket]:
    """Resolve a synchronous ``TcpStream`` constructor call; connects in the calling thread."""
    form, a = _resolve(name, [_TCP_SOCKET_OVERLOAD, _TCP_CONNECT_OVERLOAD], args, kwargs)
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

    @overload
    def __init__(
        self,
        thread_pool: ThreadPool,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
        buffer_size: int = UDP_DEFAULT_BUFFER_SIZE,
        interface_address: str = "",
    ) -> None: ...

    @overload
    def __init__(
        self,
        thread_pool: ThreadPool,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
        buffer_size: int = UDP_DEFAULT_BUFFER_SIZE,
        *,
        ttl: int,
    ) -> None: ...

    @overload
    def __init__(
        self,
        thread_pool: ThreadPool,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
        buffer_size: int = UDP_DEFAULT_BUFFER_SIZE,
        *,
        ttl: int,
        interface_address: str,
    ) -> None: ...

    @overload
    def __init__(
        self,
        thread_pool: ThreadPool,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
        buffer_size: int = UDP_DEFAULT_BUFFER_SIZE,
        *,
        ttl: int,
        interface_index: int,
    ) -> None: ...

    @overload
    def __init__(
        self,
        thread_pool: ThreadPool,
        socket: socket.socket,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
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
        self,
        thread_pool: ThreadPool,
        socket: socket.socket,
        config: StreamConfig | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        thread_pool: ThreadPool,
        endpoints: Endpoints,
        config: StreamConfig | None = None,
        buffer_size: int = TCP_DEFAULT_BUFFER_SIZE,
        interface_address: str = "",
    ) -> None: ...

    def __init__(self, thread_pool: ThreadPool, *args: Any, **kwargs: Any) -> None:
        _check_thread_pool(thread_pool)
        config, sock = open_tcp("TcpStream", args, kwargs)
        transport = TcpTransport(sock)
        own_transport(self, transport)
        super().__init__(config, transport)
        use_timer_sleep(self)
