"""UDP receive: the sockets ``add_udp_reader`` opens, and the reader that drains them.

Sockets are created, bound and joined to multicast groups in the *caller's*
thread (so configuration and bind errors raise there, with the helpers of
:mod:`.sockets`), then handed to a :class:`UdpReader` on the stream's loop.

The reader registers the socket with ``loop.add_reader`` and, per wake-up,
drains up to :data:`DATAGRAMS_PER_CALL` datagrams (``recvmmsg`` where the
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
import functools
import logging
import os
import socket
from collections.abc import Callable

import numpy as np

from .._log import log_limited, logger
from ..protocols.batch import HEADER_SIZE, PacketBatch
from ..protocols.placement import PlacedBatch, Placement, confirmed_count
from ._recvmmsg import BatchReceiver, SingleReceiver, address_of, make_batch_receiver
from .base import GO, PAUSE, Reader, StreamSink, _report_crash
from .sockets import DONTWAIT as _DONTWAIT
from .sockets import (
    SocketHandoff,
    bound_receive_socket,
    duplicate_socket,
    ip_of,
    join_ipv4_group,
    join_ipv6_group,
    resolve_endpoint,
)

__all__ = [
    "UdpReader",
    "udp_socket_for_ipv4_group",
    "udp_socket_for_ipv6_group",
    "udp_socket_for_port",
    "udp_socket_from_user",
]

_INFO = logging.INFO
_MAX_DATAGRAM = 65535
_TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EINTR, errno.ENOBUFS}
)


#: Most datagrams per receive call (fewer when they are large: see ``SLOTS_BUDGET``), and
#: per wake-up of the loop. The Python work of a call is shared by its datagrams, so
#: more per call lets a receiver that fell behind catch up faster.
DATAGRAMS_PER_CALL = 256

#: Whether UDP readers receive payloads in place (see the module docstring).
_ZERO_COPY = os.environ.get("SPEAD2_UDP_ZERO_COPY", "1") != "0"


# -- receive sockets (in the caller's thread) ---------------------------------------


def udp_socket_for_port(port: int, buffer_size: int, bind_hostname: str) -> socket.socket:
    """A UDP socket bound to ``bind_hostname:port``; joins the group if that is multicast."""
    family, sockaddr = resolve_endpoint(bind_hostname, port, socket.SOCK_DGRAM)
    addr = ip_of(sockaddr)
    join = None
    if addr.is_multicast:
        if family == socket.AF_INET6:
            join = functools.partial(join_ipv6_group, group=str(addr), interface_index=sockaddr[3])
        else:
            join = functools.partial(join_ipv4_group, group=str(addr), interface="0.0.0.0")
    # Several receivers of one group must be able to share the port.
    return bound_receive_socket(
        family, socket.SOCK_DGRAM, sockaddr, buffer_size, reuse_address=addr.is_multicast, then=join
    )


def udp_socket_for_ipv4_group(
    multicast_group: str, port: int, buffer_size: int, interface_address: str
) -> socket.socket:
    """A UDP socket bound to an IPv4 ``multicast_group`` and joined to it on ``interface_address``.

    A unicast ``multicast_group`` is accepted only if it equals
    ``interface_address`` (it is then simply bound).
    """
    _, group_addr = resolve_endpoint(multicast_group, port, socket.SOCK_DGRAM)
    group = ip_of(group_addr)
    if group.version != 4:
        raise ValueError(f"endpoint is not an IPv4 address: multicast_group={multicast_group!r}")
    _, iface_addr = resolve_endpoint(interface_address, 0, socket.SOCK_DGRAM)
    interface = ip_of(iface_addr)
    if interface.version != 4:
        raise ValueError(
            f"interface address is not an IPv4 address: interface_address={interface_address!r}"
        )
    if not group.is_multicast and group != interface:
        raise ValueError(
            "endpoint is not multicast and does not match interface address: "
            f"multicast_group={multicast_group!r}, interface_address={interface_address!r}"
        )
    join = None
    if group.is_multicast:
        join = functools.partial(join_ipv4_group, group=str(group), interface=str(interface))
    return bound_receive_socket(
        socket.AF_INET, socket.SOCK_DGRAM, (str(group), port), buffer_size,
        reuse_address=group.is_multicast, then=join,
    )


def udp_socket_for_ipv6_group(
    multicast_group: str, port: int, buffer_size: int, interface_index: int
) -> socket.socket:
    """A UDP socket bound to an IPv6 ``multicast_group`` and joined to it on ``interface_index``.

    The bind carries ``interface_index`` as the scope, so link-local and
    interface-local groups (``ff02::``, ``ff01::``, ``ff11::``...) work too.
    """
    _, group_addr = resolve_endpoint(multicast_group, port, socket.SOCK_DGRAM)
    group = ip_of(group_addr)
    if group.version != 6 or not group.is_multicast:
        raise ValueError(
            f"endpoint is not an IPv6 multicast address: multicast_group={multicast_group!r}"
        )
    scope = interface_index or (group_addr[3] if len(group_addr) > 3 else 0)
    join = functools.partial(join_ipv6_group, group=str(group), interface_index=scope)
    return bound_receive_socket(
        socket.AF_INET6, socket.SOCK_DGRAM, (str(group), port, 0, scope), buffer_size,
        reuse_address=True, then=join,
    )


def udp_socket_from_user(sock: socket.socket) -> socket.socket:
    """A duplicate of the caller's UDP socket (the caller may close theirs)."""
    if sock.type != socket.SOCK_DGRAM:
        raise TypeError(f"add_udp_reader needs a UDP (SOCK_DGRAM) socket, not {sock.type!r}")
    dup = duplicate_socket(sock)
    if _DONTWAIT == 0:
        dup.setblocking(False)  # no per-call flag on this platform
    return dup


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
        # Slots a multiple of 8 bytes apart: the headers of a batch are then
        # read as aligned 64-bit words.
        slot = (min(max_size, _MAX_DATAGRAM) + 8) & ~7
        self._receiver: BatchReceiver | SingleReceiver = (
            make_batch_receiver(self._fd, slot, DATAGRAMS_PER_CALL, _DONTWAIT, HEADER_SIZE if _ZERO_COPY else 0)
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
        """Feed what the socket holds, up to a receive call's slots of datagrams, as one batch."""
        sink = self.sink
        receiver = self._receiver
        view = receiver.view
        slot = receiver.slot_size
        slots = receiver.slots
        all_sizes = receiver.sizes
        all_starts = receiver.starts
        max_size = self._max_size
        aimable = self._aimable
        taken = 0
        verdict = GO
        while verdict == GO and taken < slots:
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
                placed = confirmed_count(view, slot, all_sizes[: min(aimed, received)], placement)
                # Every other aimed payload back into its slot before anything is processed.
                receiver.restore(placed, received, placement.buffer, placement.offsets, placement.lengths)  # type: ignore[union-attr]
            # Arrays, copied: the receiver's own change with the next call.
            sizes = all_sizes[placed:received].astype(np.intp)
            starts = all_starts[placed:received]
            if len(sizes) and int(sizes.max()) > max_size:
                kept = sizes <= max_size
                for _ in range(len(sizes) - int(kept.sum())):
                    sink.count_invalid()
                    log_limited(_INFO, "udp-truncated", "dropped packet due to truncation")
                sizes = sizes[kept]
                starts = starts[kept]
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
