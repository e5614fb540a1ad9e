"""Socket set-up shared by the four network transports (UDP and TCP, receive and send).

Everything here runs in the caller's thread, before a socket is handed to a
reader or a send transport, so its errors raise to the caller in the
reference's form: ``RuntimeError("<operation>: <strerror> [<where>]")``.
Name resolution, opening, binding, duplicating a caller's socket, buffer
sizing, multicast options and joins, and the hand-over of a receive socket to
its reader on the stream's loop.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import select
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .._log import logger

__all__ = [
    "DONTWAIT",
    "IOV_MAX",
    "Address",
    "SocketHandoff",
    "bind",
    "bind_interface",
    "bound_receive_socket",
    "configure_ipv4_multicast",
    "configure_ipv6_multicast",
    "configure_multicast_ttl",
    "duplicate_socket",
    "interface_error",
    "ip_of",
    "join_ipv4_group",
    "join_ipv6_group",
    "new_socket",
    "report_socket_buffer",
    "request_socket_buffer",
    "resolve_endpoint",
    "resolve_endpoint_async",
    "runtime_error",
    "set_receive_buffer",
    "set_send_buffer",
    "wait_writable",
]

Address = tuple[Any, ...]

#: Non-blocking for one call, leaving the O_NONBLOCK flag of a descriptor we
#: share with the caller (a duplicated socket shares it) untouched.
DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)
#: Most buffers one sendmsg accepts; longer packets are joined (UDP) or sent in pieces (TCP).
IOV_MAX: int = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16

_INT_MAX = 2**31 - 1
#: Linux reports (and accounts) twice the SO_RCVBUF it was asked for, half of
#: it for bookkeeping; halving the read-back gives the figure comparable to the request.
_BUFFER_REPORT_FACTOR = 2 if sys.platform.startswith("linux") else 1
_EAI_NOT_FOUND = frozenset(
    code
    for code in (
        getattr(socket, "EAI_NONAME", None),
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
)
_FAMILY_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}


def runtime_error(operation: str, exc: OSError, where: object = None) -> RuntimeError:
    """``RuntimeError("<operation>: <strerror>")``, the reference's form for socket failures."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    suffix = f" [{where}]" if where is not None else ""
    return RuntimeError(f"{operation}: {reason}{suffix}")


# -- name resolution ------------------------------------------------------------------


def _resolve_error(exc: OSError, host: str) -> RuntimeError:
    if isinstance(exc, socket.gaierror) and exc.errno in _EAI_NOT_FOUND:
        reason = "Host not found (authoritative)"
    else:
        reason = exc.strerror or str(exc)
    return RuntimeError(f"resolve: {reason} [{host!r}]")


def _pick(
    host: str,
    infos: Sequence[tuple[Any, ...]],
    family: socket.AddressFamily | None,
) -> tuple[socket.AddressFamily, Address]:
    if family is not None:
        for info in infos:
            if info[0] == family:
                return family, info[4]
        found = _FAMILY_NAMES.get(infos[0][0], str(infos[0][0]))
        raise ValueError(
            f"Endpoint does not match protocol of the socket: {host!r} is {found}, "
            f"the socket is {_FAMILY_NAMES.get(family, str(family))}"
        )
    return infos[0][0], infos[0][4]


def resolve_endpoint(
    host: str,
    port: int,
    kind: socket.SocketKind,
    family: socket.AddressFamily | None = None,
) -> tuple[socket.AddressFamily, Address]:
    """Resolve ``host:port`` to ``(family, sockaddr)``: the first address, or the first of ``family``.

    An empty host is the IPv4 wildcard, as in the reference. A name that
    does not resolve raises ``RuntimeError("resolve: Host not found ...")``;
    one that has no address of ``family`` raises ``ValueError("Endpoint does
    not match protocol of the socket ...")``.
    """
    if host == "":
        host = "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, port, 0, kind)
    except OSError as exc:
        raise _resolve_error(exc, host) from None
    except UnicodeError as exc:
        raise RuntimeError(f"resolve: invalid host name {host!r}: {exc}") from None
    return _pick(host, infos, family)


async def resolve_endpoint_async(
    host: str,
    port: int,
    kind: socket.SocketKind,
    family: socket.AddressFamily | None = None,
) -> tuple[socket.AddressFamily, Address]:
    """:func:`resolve_endpoint` without blocking the running event loop."""
    if host == "":
        host = "0.0.0.0"
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=kind)
    except OSError as exc:
        raise _resolve_error(exc, host) from None
    except UnicodeError as exc:
        raise RuntimeError(f"resolve: invalid host name {host!r}: {exc}") from None
    return _pick(host, infos, family)


def ip_of(sockaddr: Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP address of a resolved socket address (without any ``%scope``)."""
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


# -- opening, binding, duplicating -------------------------------------------------------


def new_socket(family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
    """A new blocking socket; failure is ``RuntimeError("open: ...")`` as in the reference."""
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise runtime_error("open", exc) from None
    # Blocking even under socket.setdefaulttimeout(): sync sends must wait in
    # the kernel, and non-blocking calls pass MSG_DONTWAIT.
    sock.settimeout(None)
    return sock


def _format_endpoint(sockaddr: Address) -> str:
    host = str(sockaddr[0])
    return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"


def bind(sock: socket.socket, sockaddr: Address, where: str | None = None) -> None:
    """Bind ``sock``; failure is ``RuntimeError("bind: ... [where]")`` (``where``: the endpoint)."""
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        raise runtime_error("bind", exc, _format_endpoint(sockaddr) if where is None else where) from None


def interface_error(interface_address: str) -> RuntimeError:
    """The error for a source address of the wrong family (what ``bind`` would say)."""
    exc = OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
    return runtime_error("bind", exc, interface_address)


def bind_interface(sock: socket.socket, interface_address: str) -> None:
    """Bind ``sock`` to ``interface_address`` (any port), the source address for its packets."""
    try:
        _, sockaddr = resolve_endpoint(interface_address, 0, sock.type, sock.family)
    except ValueError:
        raise interface_error(interface_address) from None
    bind(sock, sockaddr, interface_address)


def bound_receive_socket(
    family: socket.AddressFamily,
    kind: socket.SocketKind,
    sockaddr: Address,
    buffer_size: int,
    *,
    reuse_address: bool,
    then: Callable[[socket.socket], None] | None = None,
) -> socket.socket:
    """A new socket with a ``buffer_size``-byte receive buffer, bound to ``sockaddr``.

    ``reuse_address`` sets ``SO_REUSEADDR`` first; ``then`` finishes the set-up
    once bound (join a multicast group, listen). The buffer is asked for before
    the bind (accepted TCP sockets inherit it from the listener), but a smaller
    one is only reported once everything has succeeded: a warning printed just
    before a bind failure would only mislead. On any error the socket is closed.
    """
    sock = new_socket(family, kind)
    try:
        if reuse_address:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_receive_buffer(sock, buffer_size, report=False)
        bind(sock, sockaddr)
        if then is not None:
            then(sock)
        report_socket_buffer(sock, socket.SO_RCVBUF, buffer_size)
    except BaseException:
        sock.close()
        raise
    return sock


def duplicate_socket(sock: socket.socket) -> socket.socket:
    """A new socket object on a duplicate of the caller's descriptor (they may close theirs).

    The duplicate shares the caller's blocking mode (it is a property of the
    shared open file), which is left as the caller set it; the Python-level
    timeout is made to agree with it, whatever the caller's timeout or
    ``socket.setdefaulttimeout()`` say (a timeout would make every call poll
    first, and flip the shared O_NONBLOCK flag). Calls that must not block
    pass ``MSG_DONTWAIT``; sends that find a non-blocking socket full wait
    with :func:`wait_writable`.
    """
    try:
        fd = os.dup(sock.fileno())
    except OSError as exc:
        raise runtime_error("dup", exc) from None
    blocking = os.get_blocking(fd)
    dup = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    dup.settimeout(None if blocking else 0.0)
    return dup


def wait_writable(fd: int) -> None:
    """Block the calling thread until ``fd`` can take more data (or has an error to report)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll()


# -- buffer sizes ----------------------------------------------------------------------


def request_socket_buffer(
    sock: socket.socket, option: int, requested: int, report: bool = True
) -> None:
    """Ask for a ``requested``-byte ``SO_RCVBUF``/``SO_SNDBUF`` (0: leave the OS default).

    Getting less is common (the kernel caps it) and only worth a warning that
    names both sizes (see :func:`report_socket_buffer`); it is never an error.
    """
    if requested <= 0:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, min(requested, _INT_MAX))
    except OSError:
        pass  # some kernels refuse oversized requests outright: report what we have
    if report:
        report_socket_buffer(sock, option, requested)


def report_socket_buffer(sock: socket.socket, option: int, requested: int) -> None:
    """Warn if the socket's ``option`` buffer is smaller than ``requested`` bytes (0: never)."""
    if requested <= 0:
        return
    granted = sock.getsockopt(socket.SOL_SOCKET, option) // _BUFFER_REPORT_FACTOR
    if granted < requested:
        logger.warning(
            "requested socket buffer size %d but only received %d: the kernel caps it "
            "(on Linux raise net.core.%s; see the documentation on receiving multicast)",
            requested,
            granted,
            "rmem_max" if option == socket.SO_RCVBUF else "wmem_max",
        )


def set_receive_buffer(sock: socket.socket, requested: int, report: bool = True) -> None:
    """Ask the kernel for a ``requested``-byte receive buffer (0: leave the OS default).

    ``report=False`` defers the warning about a smaller buffer to a later
    :func:`report_socket_buffer` call, made once the socket is bound: a
    warning printed just before a bind failure would only mislead.
    """
    request_socket_buffer(sock, socket.SO_RCVBUF, requested, report)


def set_send_buffer(sock: socket.socket, requested: int) -> None:
    """Ask the kernel for a ``requested``-byte send buffer (0: leave the OS default)."""
    request_socket_buffer(sock, socket.SO_SNDBUF, requested)


# -- multicast ----------------------------------------------------------------------


def join_ipv4_group(sock: socket.socket, group: str, interface: str) -> None:
    """Receive IPv4 multicast ``group`` on ``sock`` through the interface with address ``interface``."""
    mreq = socket.inet_aton(group) + socket.inet_aton(interface)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    except OSError as exc:
        raise runtime_error("set_option", exc, f"join {group} on {interface}") from None


def join_ipv6_group(sock: socket.socket, group: str, interface_index: int) -> None:
    """Receive IPv6 multicast ``group`` on ``sock`` through interface number ``interface_index``."""
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", interface_index)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except OSError as exc:
        raise runtime_error("set_option", exc, f"join {group} on interface {interface_index}") from None


def configure_multicast_ttl(sock: socket.socket, ttl: int) -> None:
    """Set the multicast TTL (IPv4) or hop limit (IPv6) of ``sock``."""
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    except OSError as exc:
        raise runtime_error("set_option", exc, f"ttl={ttl}") from None


def configure_ipv4_multicast(sock: socket.socket, interface_address: str) -> None:
    """Send ``sock``'s IPv4 multicast out of the interface with ``interface_address``."""
    _, sockaddr = resolve_endpoint(interface_address, 0, socket.SOCK_DGRAM, socket.AF_INET)
    try:
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(str(sockaddr[0]))
        )
    except OSError as exc:
        raise runtime_error("set_option", exc, f"interface_address={interface_address!r}") from None


def configure_ipv6_multicast(sock: socket.socket, interface_index: int) -> None:
    """Send ``sock``'s IPv6 multicast out of interface number ``interface_index``."""
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface_index)
    except OSError as exc:
        raise runtime_error("set_option", exc, f"interface_index={interface_index}") from None


# -- the hand-over to a reader ---------------------------------------------------------


class SocketHandoff:
    """A socket on its way from the caller's thread to a reader on the stream's loop.

    The reader :meth:`take`\\ s it; if none does (the stream was already
    stopped, or adding the reader failed), :meth:`discard` closes it.
    """

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock

    def take(self) -> socket.socket:
        """Take ownership of the socket (once)."""
        sock = self._sock
        if sock is None:
            raise RuntimeError("socket already taken")
        self._sock = None
        return sock

    def discard(self) -> None:
        """Close the socket unless a reader took it."""
        sock = self._sock
        self._sock = None
        if sock is not None:
            sock.close()
