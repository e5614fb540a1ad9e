"""UDP send: the sockets ``UdpStream`` opens, and the transports that send datagrams on them.

Socket set-up runs in the caller's thread (so resolution, bind and option
errors raise to the caller). The helpers TCP send shares — endpoint
resolution, send-buffer sizing, duplicating a caller's socket, waiting for a
socket to become writable — live here too.

Every packet goes to the kernel as the packetizer's list of buffers with one
``socket.sendmsg`` (scatter/gather): header bytes plus slices of the item
buffers, never joined. Synchronous sends block in the kernel; asyncio sends
use ``MSG_DONTWAIT`` so the event loop never blocks, and when the socket
buffer is full they hand the driver an awaitable that completes once the
packet has gone (backpressure), see :class:`Backlog`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import select
import socket
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..protocols.packetizer import Packet
from .udp import request_socket_buffer, runtime_error

__all__ = [
    "Address",
    "AsyncUdpTransport",
    "Backlog",
    "UdpTransport",
    "bind_interface",
    "bind_to",
    "configure_ipv4_multicast",
    "configure_ipv6_multicast",
    "configure_multicast_ttl",
    "duplicate_user_socket",
    "interface_error",
    "ip_of",
    "new_socket",
    "resolve_endpoint",
    "resolve_endpoint_async",
    "set_send_buffer",
    "wait_writable",
]

Address = tuple[Any, ...]

#: Non-blocking for one call, leaving the O_NONBLOCK flag of a descriptor we
#: share with the caller (a duplicated socket shares it) untouched.
DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)
#: Most buffers one sendmsg accepts; longer packets are joined (UDP) or sent in pieces (TCP).
IOV_MAX: int = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16
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


# -- socket helpers (run in the caller's thread) --------------------------------------


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
    """Resolve ``host:port`` to ``(family, sockaddr)``, preferring ``family`` when given.

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


def interface_error(interface_address: str) -> RuntimeError:
    """The error for a source address of the wrong family (what ``bind`` would say)."""
    exc = OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
    return runtime_error("bind", exc, interface_address)


def bind_to(sock: socket.socket, sockaddr: Address, interface_address: str) -> None:
    """Bind ``sock`` to a resolved source address; failure is ``RuntimeError("bind: ...")``."""
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        raise runtime_error("bind", exc, interface_address) from None


def ip_of(sockaddr: Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IP address of a resolved socket address (without any ``%scope``)."""
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


def new_socket(family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
    """A new blocking socket; failure is ``RuntimeError("open: ...")`` as in the reference."""
    try:
        sock = socket.socket(family, kind)
    except OSError as exc:
        raise runtime_error("open", exc) from None
    # Blocking even under socket.setdefaulttimeout(): sync sends must wait in
    # the kernel, and asyncio sends pass MSG_DONTWAIT per call.
    sock.settimeout(None)
    return sock


def set_send_buffer(sock: socket.socket, requested: int) -> None:
    """Ask the kernel for a ``requested``-byte send buffer (0: leave the OS default)."""
    request_socket_buffer(sock, socket.SO_SNDBUF, requested)


def bind_interface(sock: socket.socket, interface_address: str) -> None:
    """Bind ``sock`` to ``interface_address`` (any port), the source address for its packets."""
    try:
        _, sockaddr = resolve_endpoint(interface_address, 0, sock.type, sock.family)
    except ValueError:
        raise interface_error(interface_address) from None
    bind_to(sock, sockaddr, interface_address)


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


def duplicate_user_socket(sock: socket.socket) -> socket.socket:
    """A new socket object on a duplicate of the caller's descriptor (they may close theirs).

    The duplicate shares the caller's blocking mode (it is a property of the
    shared open file), which is left as the caller set it: sends that find a
    non-blocking socket full wait for it with :func:`wait_writable`.
    """
    try:
        fd = os.dup(sock.fileno())
    except OSError as exc:
        raise runtime_error("dup", exc) from None
    blocking = os.get_blocking(fd)
    dup = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    # Python's timeout must agree with the descriptor (a default timeout would
    # make it poll before every send, and flip the shared O_NONBLOCK flag).
    dup.settimeout(None if blocking else 0.0)
    return dup


def wait_writable(fd: int) -> None:
    """Block the calling thread until ``fd`` can take more data (or has an error to report)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll()


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


class AsyncUdpTransport(UdpTransport):
    """The asyncio flavour: ``send_packet`` never blocks the event loop.

    When the socket buffer is full the packet waits in a :class:`Backlog`
    (the packet's buffers stay referenced, not copied, until it has gone)
    and ``send_packet`` returns its future for the driver to await.
    """

    __slots__ = ("_backlog",)

    def __init__(self, sock: socket.socket, addrs: Sequence[Address]) -> None:
        super().__init__(sock, addrs)
        self._backlog: Backlog | None = None
        if DONTWAIT == 0:  # pragma: no cover - platforms without MSG_DONTWAIT
            sock.setblocking(False)

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

    def send_packet_blocking(self, substream_index: int, packet: Packet) -> None:
        """Send one datagram, blocking; a packet still waiting on the loop goes first."""
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None
            backlog.finish_blocking()
        UdpTransport.send_packet_blocking(self, substream_index, packet)
