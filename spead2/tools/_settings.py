"""The settings of the tools' streams, from their options or the bench's control messages.

:class:`ReceiverSettings` and :class:`SenderSettings` turn the options of
:mod:`._stream_options` into stream configurations and open the streams.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Self

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
import spead2.send.asyncio

from ._arguments import Source

__all__ = ["ReceiverSettings", "SenderSettings", "make_recv_stream"]


#: Settings whose options carry the tool's ``io_prefix`` (e.g. ``--recv-buffer``).
_PREFIXED = ("buffer", "bind", "affinity", "threads")


def _collect(cls: type, args: argparse.Namespace, io_prefix: str) -> dict[str, Any]:
    """The dataclass fields of ``cls`` that ``args`` has values for."""
    dest = io_prefix.replace("-", "_")
    values: dict[str, Any] = {}
    for field in fields(cls):
        name = dest + field.name if field.name in _PREFIXED else field.name
        if hasattr(args, name):
            values[field.name] = getattr(args, name)
    return values


@dataclass
class _StreamSettings:
    """What receive and send streams have in common: sockets, threads, protocol."""

    buffer: int | None = None
    bind: str | None = None
    affinity: list[int] | None = None
    threads: int = 1
    tcp: bool = False
    pyspead: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, io_prefix: str = "") -> Self:
        """Collect the settings from parsed arguments (see :mod:`._stream_options`)."""
        return cls(**_collect(cls, args, io_prefix))


@dataclass
class ReceiverSettings(_StreamSettings):
    """Receive-stream settings (the reference's ``ReceiverOptions`` plus the protocol options).

    The field names are the reference's, so the bench's control protocol can
    carry them as JSON between our tools and the reference's.
    """

    memcpy_nt: bool = False
    concurrent_heaps: int = 4
    substreams: int = 1
    ring_heaps: int = 4
    mem_pool: bool = False
    mem_lower: int = 16384
    mem_upper: int = 33554432
    mem_max_free: int = 12
    mem_initial: int = 8
    packet: int | None = None

    @classmethod
    def from_json(cls, receiver: Mapping[str, Any], protocol: Mapping[str, Any]) -> ReceiverSettings:
        """From the bench control message's ``receiver`` and ``protocol`` objects (unknown keys ignored)."""
        names = {field.name for field in fields(cls)}
        values = {key: value for key, value in receiver.items() if key in names}
        values.update({key: protocol[key] for key in ("tcp", "pyspead") if key in protocol})
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The ``receiver`` object of the bench control message, with the reference's keys."""
        values = asdict(self)
        del values["tcp"], values["pyspead"]
        values.update(ibv=False, ibv_vector=0, ibv_max_poll=10)
        values["packet"] = self.max_packet()
        values["buffer"] = self.buffer_size()
        return values

    def max_packet(self) -> int:
        """``--packet``, or the reader's default for the protocol."""
        if self.packet is not None:
            return self.packet
        return spead2.recv.Stream.DEFAULT_TCP_MAX_SIZE if self.tcp else spead2.recv.Stream.DEFAULT_UDP_MAX_SIZE

    def buffer_size(self) -> int:
        """``--buffer``, or the reader's default for the protocol."""
        if self.buffer is not None:
            return self.buffer
        return (
            spead2.recv.Stream.DEFAULT_TCP_BUFFER_SIZE
            if self.tcp
            else spead2.recv.Stream.DEFAULT_UDP_BUFFER_SIZE
        )

    def stream_config(self) -> spead2.recv.StreamConfig:
        """The receive ``StreamConfig`` these settings describe."""
        config = spead2.recv.StreamConfig(
            max_heaps=self.concurrent_heaps,
            substreams=self.substreams,
            bug_compat=spead2.BUG_COMPAT_PYSPEAD_0_5_2 if self.pyspead else 0,
            memcpy=spead2.MEMCPY_NONTEMPORAL if self.memcpy_nt else spead2.MEMCPY_STD,
        )
        # Counted on request only (the default layout is the reference's nine):
        # the progress line's drops need it.
        config.add_stat("invalid_packets")
        if self.mem_pool:
            config.memory_allocator = spead2.MemoryPool(
                self.mem_lower, self.mem_upper, self.mem_max_free, self.mem_initial
            )
        return config

    def ring_config(self) -> spead2.recv.RingStreamConfig:
        """The ``RingStreamConfig`` these settings describe."""
        return spead2.recv.RingStreamConfig(heaps=self.ring_heaps)

    def add_reader(self, stream: spead2.recv.Stream, source: Source) -> None:
        """Add the reader for one source, chosen as the reference's ``spead2_recv`` does."""
        if isinstance(source, str):
            stream.add_udp_pcap_file_reader(source)
            return
        host, port = source
        if self.tcp:
            stream.add_tcp_reader(port, self.max_packet(), self.buffer_size(), host)
        elif self.bind:
            stream.add_udp_reader(host, port, self.max_packet(), self.buffer_size(), self.bind)
        else:
            stream.add_udp_reader(port, self.max_packet(), self.buffer_size(), host)


async def make_recv_stream(
    thread_pool: spead2.ThreadPool, settings: ReceiverSettings
) -> spead2.recv.asyncio.Stream:
    """An asyncio receive stream for ``settings``.

    With one thread (the default) the stream's protocol work runs on the
    calling event loop, with no thread hop; with ``--threads N`` > 1 it is
    built off the loop, so that it runs on one of the pool's threads (streams
    are placed on them in turn) and is consumed from here.
    """
    config = settings.stream_config()
    ring_config = settings.ring_config()
    if settings.threads > 1:
        return await asyncio.to_thread(spead2.recv.asyncio.Stream, thread_pool, config, ring_config)
    return spead2.recv.asyncio.Stream(thread_pool, config, ring_config)


# -- send settings ------------------------------------------------------------------


@dataclass
class SenderSettings(_StreamSettings):
    """Send-stream settings (the reference's ``SenderOptions`` plus the protocol options)."""

    addr_bits: int = 40
    packet: int = spead2.send.StreamConfig.DEFAULT_MAX_PACKET_SIZE
    burst: int = spead2.send.StreamConfig.DEFAULT_BURST_SIZE
    burst_rate_ratio: float = spead2.send.StreamConfig.DEFAULT_BURST_RATE_RATIO
    max_heaps: int = spead2.send.StreamConfig.DEFAULT_MAX_HEAPS
    rate_method: spead2.send.RateMethod = spead2.send.RateMethod.AUTO
    rate: float = 0.0  # Gbit/s
    ttl: int | None = None

    def flavour(self) -> spead2.Flavour:
        """``Flavour(4, 64, addr_bits, bug_compat)``."""
        bug_compat = spead2.BUG_COMPAT_PYSPEAD_0_5_2 if self.pyspead else 0
        return spead2.Flavour(4, 64, self.addr_bits, bug_compat)

    def stream_config(self) -> spead2.send.StreamConfig:
        """The send ``StreamConfig`` (``rate`` converted from Gbit/s to bytes/s)."""
        return spead2.send.StreamConfig(
            max_packet_size=self.packet,
            rate=self.rate * 1e9 / 8,
            burst_size=self.burst,
            max_heaps=self.max_heaps,
            burst_rate_ratio=self.burst_rate_ratio,
            rate_method=self.rate_method,
        )

    async def make_stream(
        self, thread_pool: spead2.ThreadPool, endpoints: list[tuple[str, int]]
    ) -> spead2.send.asyncio.UdpStream | spead2.send.asyncio.TcpStream:
        """Open the asyncio send stream: TCP to the single endpoint, or UDP to them all."""
        config = self.stream_config()
        if self.tcp:
            buffer = spead2.send.asyncio.TcpStream.DEFAULT_BUFFER_SIZE if self.buffer is None else self.buffer
            try:
                return await spead2.send.asyncio.TcpStream.connect(
                    thread_pool, endpoints, config, buffer, self.bind or ""
                )
            except OSError as exc:
                host, port = endpoints[0]
                reason = os.strerror(exc.errno) if exc.errno else str(exc)
                raise OSError(exc.errno, f"cannot connect to {host}:{port}: {reason}") from None
        buffer = spead2.send.asyncio.UdpStream.DEFAULT_BUFFER_SIZE if self.buffer is None else self.buffer
        kwargs: dict[str, Any] = {}
        if self.ttl is not None:
            kwargs["ttl"] = self.ttl
        if self.bind:
            kwargs["interface_address"] = self.bind
        return spead2.send.asyncio.UdpStream(thread_pool, endpoints, config, buffer, **kwargs)
