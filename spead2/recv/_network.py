"""``add_udp_reader`` and ``add_tcp_reader``: the reference's overloads, resolved in Python.

The reference (pybind11) picks the first overload whose parameters accept
the arguments' *types*; so does
:func:`~spead2.protocols.arguments.resolve_overload`, which keeps, for example,
``add_udp_reader('127.0.0.1', 7148)`` resolving to the IPv4 multicast
overload. Once an overload is chosen, out-of-range values are reported as
:class:`~spead2.protocols.arguments.ArgumentRangeError` (a ``TypeError``, as the reference's
failed conversion gives, and a ``ValueError``) naming the parameter.

Sockets are created, bound and joined here, in the caller's thread, so their
errors raise to the caller; the reader then takes the socket over on the
stream's loop.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, overload

from ..protocols.arguments import REQUIRED, Overload, OverloadRules, is_int, resolve_overload
from ..transports.base import Reader
from ..transports.sockets import SocketHandoff
from ..transports.tcp import TcpReader, tcp_listener_for_port, tcp_listener_from_user
from ..transports.udp import (
    UdpReader,
    udp_socket_for_ipv4_group,
    udp_socket_for_ipv6_group,
    udp_socket_for_port,
    udp_socket_from_user,
)

__all__ = ["NetworkReaders"]

# The values of recv.Stream.DEFAULT_* (the reference's signatures show the numbers).
_UDP_MAX_SIZE = 9200
_UDP_BUFFER_SIZE = 8388608
_TCP_MAX_SIZE = 65536
_TCP_BUFFER_SIZE = 212992

#: Parameter kinds: the type name pybind11 shows, and the check of an argument.
_RULES = OverloadRules(
    kinds={
        "int": ("int", is_int),
        "str": ("str", lambda value: isinstance(value, str)),
        "socket": ("socket.socket", lambda value: isinstance(value, socket.socket)),
    },
    # Inclusive bounds of the integer parameters (the reference's C++ types).
    bounds={
        "port": (0, 65535),
        "max_size": (0, 2**63 - 1),
        "buffer_size": (0, 2**63 - 1),
        "interface_index": (0, 2**32 - 1),
    },
)


_UDP_OVERLOADS = [
    Overload([
        ("port", "int", REQUIRED),
        ("max_size", "int", _UDP_MAX_SIZE),
        ("buffer_size", "int", _UDP_BUFFER_SIZE),
        ("bind_hostname", "str", ""),
    ]),
    Overload([("socket", "socket", REQUIRED), ("max_size", "int", _UDP_MAX_SIZE)]),
    Overload([
        ("multicast_group", "str", REQUIRED),
        ("port", "int", REQUIRED),
        ("max_size", "int", _UDP_MAX_SIZE),
        ("buffer_size", "int", _UDP_BUFFER_SIZE),
        ("interface_address", "str", "0.0.0.0"),
    ]),
    Overload([
        ("multicast_group", "str", REQUIRED),
        ("port", "int", REQUIRED),
        ("max_size", "int", _UDP_MAX_SIZE),
        ("buffer_size", "int", _UDP_BUFFER_SIZE),
        ("interface_index", "int", 0),
    ]),
]

_TCP_OVERLOADS = [
    Overload([
        ("port", "int", REQUIRED),
        ("max_size", "int", _TCP_MAX_SIZE),
        ("buffer_size", "int", _TCP_BUFFER_SIZE),
        ("bind_hostname", "str", ""),
    ]),
    Overload([("acceptor", "socket", REQUIRED), ("max_size", "int", _TCP_MAX_SIZE)]),
]


class NetworkReaders:
    """The UDP and TCP ``add_*_reader`` methods of the receive streams."""

    if TYPE_CHECKING:

        def _add_reader(self, make: type[Reader], *args: Any) -> None: ...

    # The overloads, for editors and type checkers (a str port is caught
    # before it runs); the implementation resolves them at run time as the
    # reference does.
    @overload
    def add_udp_reader(
        self, port: int, max_size: int = ..., buffer_size: int = ..., bind_hostname: str = ...
    ) -> None: ...
    @overload
    def add_udp_reader(self, socket: socket.socket, max_size: int = ...) -> None: ...
    @overload
    def add_udp_reader(
        self, multicast_group: str, port: int, max_size: int = ..., buffer_size: int = ...,
        interface_address: str = ...,
    ) -> None: ...
    @overload
    def add_udp_reader(
        self, multicast_group: str, port: int, max_size: int = ..., buffer_size: int = ...,
        *, interface_index: int,
    ) -> None: ...
    @overload
    def add_udp_reader(
        self, multicast_group: str, port: int, max_size: int, buffer_size: int,
        interface_index: int,
    ) -> None: ...

    def add_udp_reader(self, *args: Any, **kwargs: Any) -> None:
        """Receive UDP datagrams, one packet each. Overloads (as in spead2):

        * ``add_udp_reader(port, max_size=9200, buffer_size=8388608, bind_hostname='')``:
          bind ``port`` on ``bind_hostname`` ('' = every IPv4 interface); a
          multicast ``bind_hostname`` is also joined.
        * ``add_udp_reader(socket, max_size=9200)``: use (a duplicate of) a
          UDP socket the caller bound.
        * ``add_udp_reader(multicast_group, port, max_size=9200, buffer_size=8388608,
          interface_address='0.0.0.0')``: join an IPv4 group on the interface
          with that address (a unicast group must equal ``interface_address``).
        * ``add_udp_reader(multicast_group, port, max_size=9200, buffer_size=8388608,
          interface_index=0)``: join an IPv6 group on that interface.

        Datagrams longer than ``max_size`` are dropped and counted in
        ``invalid_packets``. ``buffer_size`` is the kernel receive buffer
        requested (0 = OS default); getting less is only a warning.
        """
        which, a = resolve_overload("add_udp_reader", _UDP_OVERLOADS, args, kwargs, _RULES)
        if which == 0:
            sock = udp_socket_for_port(a["port"], a["buffer_size"], a["bind_hostname"])
        elif which == 1:
            sock = udp_socket_from_user(a["socket"])
        elif which == 2:
            sock = udp_socket_for_ipv4_group(
                a["multicast_group"], a["port"], a["buffer_size"], a["interface_address"]
            )
        else:
            sock = udp_socket_for_ipv6_group(
                a["multicast_group"], a["port"], a["buffer_size"], a["interface_index"]
            )
        self._hand_over(UdpReader, sock, a["max_size"])

    @overload
    def add_tcp_reader(
        self, port: int, max_size: int = ..., buffer_size: int = ..., bind_hostname: str = ...
    ) -> None: ...
    @overload
    def add_tcp_reader(self, acceptor: socket.socket, max_size: int = ...) -> None: ...

    def add_tcp_reader(self, *args: Any, **kwargs: Any) -> None:
        """Accept one TCP connection and receive the packets it carries. Overloads:

        * ``add_tcp_reader(port, max_size=65536, buffer_size=212992, bind_hostname='')``:
          listen on ``port`` of ``bind_hostname`` ('' = every IPv4 interface).
        * ``add_tcp_reader(acceptor, max_size=65536)``: accept on (a duplicate
          of) the caller's listening socket.

        Exactly one connection is accepted; when it ends the stream stops.
        Packets longer than ``max_size`` are skipped and counted in
        ``invalid_packets``; on an invalid header the reader logs it, moves
        on 8 bytes and tries again.
        """
        which, a = resolve_overload("add_tcp_reader", _TCP_OVERLOADS, args, kwargs, _RULES)
        if which == 0:
            sock = tcp_listener_for_port(a["port"], a["buffer_size"], a["bind_hostname"])
        else:
            sock = tcp_listener_from_user(a["acceptor"])
        self._hand_over(TcpReader, sock, a["max_size"])

    def _hand_over(self, make: type[Reader], sock: socket.socket, *args: Any) -> None:
        handoff = SocketHandoff(sock)
        try:
            self._add_reader(make, handoff, *args)
        finally:
            handoff.discard()  # closes it unless the reader took it (e.g. the stream had stopped)
