"""UDP receive: the sockets ``add_udp_reader`` opens, and the reader that drains them.

Sockets are created, bound and joined to multicast groups in the *caller's*
thread (so configuration and bind errors raise there), then handed to a
:class:`UdpReader` on the stream's loop. The socket helpers that TCP shares
(name resolution, error wrapping, receive-buffer sizing, the hand-over) live
here too.

The reader registers the socket with ``loop.add_reader`` and, per wake-up,
drains up to :data:`~.base.BATCH_PACKETS` datagrams (``recvmmsg`` where the
platform has it, else ``recv_into``) into one preallocated buffer and feeds
each receive call's datagrams to the stream as one batch: no per-datagram
callback, no per-datagram allocation beyond the slice handed over (the core
copies the payload out, so the buffer is reused at once). While the heap ring is full the reader stops
reading and the kernel's socket buffer absorbs (or drops) the traffic.

With ``recvmmsg`` the reader also receives payloads straight into place:
before each receive call it asks the stream where the next packets go if
they continue the current heap in order (:mod:`spead2.protocols.placement`)
and aims each slot's payload area there; the leading datagrams that turn
out to be exactly those packets cost no copy, the others are made whole in
their slots before anything is processed. ``SPEAD2_UDP_ZERO_COPY=0`` in the
environment turns this off (for measurements).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

from .._log import log_limited, logger
from ..protocols.batch import HEADER_SIZE, PacketBatch
from ..protocols.placement import PlacedBatch, Placement, confirmed_count
from ._recvmmsg import BatchReceiver, SingleReceiver, address_of, make_batch_receiver
from .base import BATCH_PACKETS, GO, PAUSE, Reader, StreamSink, _report_crash

__all__ = [
    "SocketHandoff",
    "UdpReader",
    "resolve",
    "runtime_error",
    "report_socket_buffer",
    "request_socket_buffer",
    "set_receive_buffer",
    "udp_socket_for_ipv4_group",
    "udp_socket_for_ipv6_group",
    "udp_socket_for_port",
    "udp_socket_from_user",
]

_INFO = logging.INFO
_INT_MAX = 2**31 - 1
_MAX_DATAGRAM = 65535
#: Linux reports (and accounts) twice the SO_RCVBUF it was asked for, half of
#: it for bookkeeping; halving the read-back gives the figure comparable to the request.
_BUFFER_REPORT_FACTOR = 2 if sys.platform.startswith("linux") else 1
#: Receive without blocking, leaving the O_NONBLOCK flag of a socket we share
#: with the caller (a duplicated descriptor shares it) untouched.
_DONTWAIT: int = getattr(socket, "MSG_DONTWAIT", 0)
_TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EINTR, errno.ENOBUFS}
)

Address = tuple[Any, ...]

#: Whether UDP readers receive payloads in place (see the module docstring).
_ZERO_COPY = os.environ.get("SPEAD2_UDP_ZERO_COPY", "1") != "0"


# -- socket helpers (run in the caller's thread) --------------------------------------


def runtime_error(operation: str, exc: OSError, where: object = None) -> RuntimeError:
    """``RuntimeError("<operation>: <strerror>")``, the reference's form for socket failures."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    suffix = f" [{where}]" if where is not None else ""
    return RuntimeError(f"{operation}: {reason}{suffix}")


def resolve(host: str, port: int, kind: socket.SocketKind) -> tuple[socket.AddressFamily, Address]:
    """The first address ``host`` resolves to, as ``(family, sockaddr)``.

    An empty ``host`` means the IPv4 wildcard, as in the reference. Failure
    raises ``RuntimeError("resolve: ...")``.
    """
    if host == "":
        return socket.AF_INET, ("0.0.0.0", port)
    try:
        infos = socket.getaddrinfo(host, port, 0, kind)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            reason = "Host not found (authoritative)"
        else:
            reason = exc.strerror or str(exc)
        raise RuntimeError(f"resolve: {reason} [{host!r}]") from None
    except UnicodeError as exc:
        raise RuntimeError(f"resolve: invalid host name {host!r}: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def _ip(sockaddr: Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])


def set_receive_buffer(sock: socket.socket, requested: int, report: bool = True) -> None:
    """Ask the kernel for a ``requested``-byte receive buffer (0: leave the OS default).

    ``report=False`` defers the warning about a smaller buffer to a later
    :func:`report_socket_buffer` call, made once the socket is bound: a
    warning printed just before a bind failure would only mislead.
    """
    request_socket_buffer(sock, socket.SO_RCVBUF, requested, report)


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


def _bind(sock: socket.socket, sockaddr: Address) -> None:
    try:
        sock.bind(sockaddr)
    except OSError as exc:
        raise runtime_error("bind", exc, _format_endpoint(sockaddr)) from None


def _format_endpoint(sockaddr: Address) -> str:
    host = str(sockaddr[0])
    return f"[{host}]:{sockaddr[1]}" if ":" in host else f"{host}:{sockaddr[1]}"


def _join_ipv4(sock: socket.socket, group: str, interface: str) -> None:
    mreq = socket.inet_aton(group) + socket.inet_aton(interface)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    except OSError as exc:
        raise runtime_error("set_option", exc, f"join {group} on {interface}") from None


def _join_ipv6(sock: socket.socket, group: str, interface_index: int) -> None:
    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", interface_index)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except OSError as exc:
        raise runtime_error("set_option", exc, f"join {group} on interface {interface_index}") from None


def _new_udp_socket(family: socket.AddressFamily) -> socket.socket:
    try:
        return socket.socket(family, socket.SOCK_DGRAM)
    except OSError as exc:
        raise runtime_error("open", exc) from None


def udp_socket_for_port(port: int, buffer_size: int, bind_hostname: str) -> socket.socket:
    """A UDP socket bound to ``bind_hostname:port``; joins the group if that is multicast."""
    family, sockaddr = resolve(bind_hostname, port, socket.SOCK_DGRAM)
    addr = _ip(sockaddr)
    sock = _new_udp_socket(family)
    try:
        if addr.is_multicast:
            # Several receivers of one group must be able to share the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_receive_buffer(sock, buffer_size, report=False)
        _bind(sock, sockaddr)
        if addr.is_multicast:
            if family == socket.AF_INET6:
                _join_ipv6(sock, str(addr), sockaddr[3])
            else:
                _join_ipv4(sock, str(addr), "0.0.0.0")
        report_socket_buffer(sock, socket.SO_RCVBUF, buffer_size)
    except BaseException:
        sock.close()
        raise
    return sock


def udp_socket_for_ipv4_group(
    multicast_group: str, port: int, buffer_size: int, interface_address: str
) -> socket.socket:
    """A UDP socket bound to an IPv4 ``multicast_group`` and joined to it on ``interface_address``.

    A unicast ``multicast_group`` is accepted only if it equals
    ``interface_address`` (it is then simply bound).
    """
    _, group_addr = resolve(multicast_group, port, socket.SOCK_DGRAM)
    group = _ip(group_addr)
    if group.version != 4:
        raise ValueError(f"endpoint is not an IPv4 address: multicast_group={multicast_group!r}")
    _, iface_addr = resolve(interface_address, 0, socket.SOCK_DGRAM)
    interface = _ip(iface_addr)
    if interface.version != 4:
        raise ValueError(
            f"interface address is not an IPv4 address: interface_address={interface_address!r}"
        )
    if not group.is_multicast and group != interface:
        raise ValueError(
            "endpoint is not multicast and does not match interface address: "
            f"multicast_group={multicast_group!r}, interface_address={interface_address!r}"
        )
    sock = _new_udp_socket(socket.AF_INET)
    try:
        if group.is_multicast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_receive_buffer(sock, buffer_size, report=False)
        _bind(sock, (str(group), port))
        if group.is_multicast:
            _join_ipv4(sock, str(group), str(interface))
        report_socket_buffer(sock, socket.SO_RCVBUF, buffer_size)
    except BaseException:
        sock.close()
        raise
    return sock


def udp_socket_for_ipv6_group(
    multicast_group: str, port: int, buffer_size: int, interface_index: int
) -> socket.socket:
    """A UDP socket bound to an IPv6 ``multicast_group`` and joined to it on ``interface_index``.

    The bind carries ``interface_index`` as the scope, so link-local and
    interface-local groups (``ff02::``, ``ff01::``, ``ff11::``...) work too.
    """
    _, group_addr = resolve(multicast_group, port, socket.SOCK_DGRAM)
    group = _ip(group_addr)
    if group.version != 6 or not group.is_multicast:
        raise ValueError(
            f"endpoint is not an IPv6 multicast address: multicast_group={multicast_group!r}"
        )
    scope = interface_index or (group_addr[3] if len(group_addr) > 3 else 0)
    sock = _new_udp_socket(socket.AF_INET6)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_receive_buffer(sock, buffer_size, report=False)
        _bind(sock, (str(group), port, 0, scope))
        _join_ipv6(sock, str(group), scope)
        report_socket_buffer(sock, socket.SO_RCVBUF, buffer_size)
    except BaseException:
        sock.close()
        raise
    return sock


def udp_socket_from_user(sock: socket.socket) -> socket.socket:
    """A duplicate of the caller's UDP socket (the caller may close theirs)."""
    if sock.type != socket.SOCK_DGRAM:
        raise TypeError(f"add_udp_reader needs a UDP (SOCK_DGRAM) socket, not {sock.type!r}")
    return duplicate_socket(sock)


def duplicate_socket(sock: socket.socket) -> socket.socket:
    """A new socket object on a duplicate of ``sock``'s descriptor.

    Unlike ``sock.dup()`` it does not copy the caller's timeout, which would
    make our non-blocking receives wait.
    """
    try:
        fd = os.dup(sock.fileno())
    except OSError as exc:
        raise runtime_error("dup", exc) from None
    dup = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    if _DONTWAIT == 0:
        dup.setblocking(False)  # no per-call flag on this platform
    elif dup.gettimeout() is not None:
        dup.settimeout(None)  # only after socket.setdefaulttimeout(): receives must not poll
    return dup


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


# -- the reader (on the stream's loop) -----------------------------------------------


class UdpReader(Reader):
    """Feeds each datagram of a bound UDP socket to the stream as one packet.

    Datagrams longer than ``max_size`` are dropped and counted as invalid. Not
    lossless: while the ring is full the socket is not read, so the kernel
    buffer fills and then drops.
    """

    def __init__(self, sink: StreamSink, handoff: SocketHandoff, max_size: int) -> None:
        super().__init__(sink)
        self._sock = handoff.take()
        self._fd = self._sock.fileno()
        self._max_size = max_size
        # One spare byte: a datagram that fills its slot was longer than
        # max_size. No UDP datagram exceeds 65535 bytes, whatever max_size says.
        slot = min(max_size, _MAX_DATAGRAM) + 1
        self._receiver: BatchReceiver | SingleReceiver = (
            make_batch_receiver(self._fd, slot, BATCH_PACKETS, _DONTWAIT, HEADER_SIZE if _ZERO_COPY else 0)
            or SingleReceiver(self._sock, slot, _DONTWAIT)
        )
        #: Whether payloads may be received in place (an aimable receiver).
        self._aimable = isinstance(self._receiver, BatchReceiver) and self._receiver.header_size > 0
        self._reading = False

    def start(self) -> None:
        """Start reading (on the stream's loop)."""
        if not self.closed and not self._reading and self._task is None:
            self._resume()

    def _resume(self) -> None:
        self.sink.loop.add_reader(self._fd, self._on_readable)
        self._reading = True

    def _pause(self) -> None:
        if self._reading:
            self._reading = False
            self.sink.loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        """Feed what the socket holds, up to BATCH_PACKETS datagrams, one receive call per batch."""
        sink = self.sink
        receiver = self._receiver
        view = receiver.view
        words = receiver.words
        stride = receiver.stride
        slot = receiver.slot_size
        slots = receiver.slots
        max_size = self._max_size
        aimable = self._aimable
        taken = 0
        verdict = GO
        while verdict == GO and taken < BATCH_PACKETS:
            placement = sink.placement(slots) if aimable else None
            aimed = 0
            if placement is not None:
                aimed = receiver.aim(address_of(placement.buffer), placement.offsets, placement.lengths)  # type: ignore[union-attr]
            try:
                received = receiver.receive()
            except (BlockingIOError, InterruptedError):
                self._unaim(placement, aimed)
                break
            except OSError as exc:
                self._unaim(placement, aimed)
                if exc.errno in _TRANSIENT_ERRNOS:
                    taken += 1  # e.g. an ICMP error queued on a connected socket; retry, boundedly
                    continue
                self._fail(exc)
                return
            taken += received
            placed = 0
            if aimed:
                assert placement is not None
                first = receiver.first
                sizes = [words[first + i * stride] for i in range(min(aimed, received))]
                placed = confirmed_count(view, slot, sizes, placement)
                # Every other aimed payload back into its slot before anything is processed.
                receiver.restore(placed, received, placement.buffer, placement.offsets, placement.lengths)  # type: ignore[union-attr]
            index = receiver.first + placed * stride
            start = placed * slot
            starts = []
            sizes = []
            for _ in range(received - placed):
                size = words[index]
                index += stride
                if size > max_size:
                    sink.count_invalid()
                    log_limited(_INFO, "udp-truncated", "dropped packet due to truncation")
                else:
                    starts.append(start)
                    sizes.append(size)
                start += slot
            if aimed:
                assert placement is not None
                verdict = sink.feed(PlacedBatch(view, starts, sizes, placement, placed))
            else:
                verdict = sink.feed(PacketBatch(view, starts, sizes))
            if received < slots:
                break  # the socket is drained
        if verdict == PAUSE and not self.closed:
            self._pause()
            if self._task is None:  # not already waiting (a driven step may pause again)
                self._task = sink.loop.create_task(self._run())
                self._task.add_done_callback(_report_crash)

    def _unaim(self, placement: Placement | None, aimed: int) -> None:
        """A receive call failed: nothing arrived, so the aimed slots only need resetting."""
        if aimed:
            assert placement is not None
            self._receiver.restore(0, 0, placement.buffer, placement.offsets, placement.lengths)  # type: ignore[union-attr]

    async def _run(self) -> None:
        """Wait for room in the ring, then resume reading the socket."""
        await self.sink.wait_for_space(lossy=True)
        self._task = None
        if not self.closed:
            self._resume()

    def drive_poll(self, wake: Callable[[], None]) -> int | None:
        """The socket: step when it is readable."""
        return self._fd

    def drive_step(self) -> None:
        """What the event loop calls when the socket is readable."""
        if not self.closed:
            self._on_readable()

    def _fail(self, exc: OSError) -> None:
        logger.error("UDP reader stopped: receive failed: %s", exc)
        self.close()

    def close(self) -> None:
        """Stop reading and close the socket (on the stream's loop)."""
        if self.closed:
            return
        try:
            self._pause()
            super().close()
        finally:
            # Even when the loop is already closed, the socket must not leak.
            self.closed = True
            self._sock.close()
