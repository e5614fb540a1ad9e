"""Option parsing and stream set-up shared by the command-line tools.

The option names, defaults and meanings are those of the reference tools
(TOOLS.md). Options this implementation cannot honour (ibverbs) are still
accepted by the parser, so that ``--help`` lists them, but :func:`refuse`
turns any use of them into an argparse error saying why.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
import spead2.send.asyncio

__all__ = [
    "ReceiverSettings",
    "SenderSettings",
    "Source",
    "add_log_argument",
    "add_receiver_arguments",
    "add_sender_arguments",
    "apply_affinity",
    "integer",
    "make_parser",
    "make_recv_stream",
    "non_negative_float",
    "non_negative_int",
    "number",
    "parse_dtype",
    "parse_endpoint",
    "parse_rate_method",
    "parse_source",
    "positive_int",
    "refuse_ibverbs",
    "run_main",
    "setup_logging",
]

#: What a receive source is: ``(host, port)`` for a network endpoint, a filename otherwise.
Source = tuple[str, int] | str

_IBV_REASON = (
    "this implementation has no ibverbs support (it sends and receives through "
    "ordinary sockets); remove the option"
)


# -- argparse value types ----------------------------------------------------------------
# Each raises ArgumentTypeError with a message for people: argparse would
# otherwise report a plain ValueError as "invalid <function name> value".


def _expected(what: str, value: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {what}, got {value!r}")


def integer(value: str) -> int:
    """An integer."""
    try:
        return int(value)
    except ValueError:
        raise _expected("an integer", value) from None


def number(value: str) -> float:
    """A number (integer or decimal)."""
    try:
        return float(value)
    except ValueError:
        raise _expected("a number", value) from None


def parse_endpoint(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``, split at the last ``:``; a bare port is refused."""
    host, sep, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 <= number <= 65535:
        raise _expected("HOST:PORT with a port from 0 to 65535 (e.g. 127.0.0.1:8888)", value)
    return host, number


def parse_source(value: str) -> Source:
    """A receive source: ``port`` or ``host:port`` → ``(host, port)``; anything else is a filename.

    As in the reference, the string is split at the last ``:`` and the part
    after it must be an integer for the source to be an endpoint.
    """
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        return value
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in source {value!r}")
    return host, number


def parse_rate_method(value: str) -> spead2.send.RateMethod:
    """``SW``, ``HW`` or ``AUTO``, case-insensitive."""
    try:
        return spead2.send.RateMethod[value.upper()]
    except KeyError:
        raise _expected("SW, HW or AUTO", value) from None


def parse_log_level(value: str) -> str:
    """A logging level name such as ``INFO`` (case-insensitive)."""
    level = logging.getLevelName(value.upper())
    if not isinstance(level, int):
        raise _expected("a log level (DEBUG, INFO, WARNING, ERROR or CRITICAL)", value)
    return value.upper()


def positive_int(value: str) -> int:
    """An integer ≥ 1."""
    result = integer(value)
    if result < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {result}")
    return result


def non_negative_int(value: str) -> int:
    """An integer ≥ 0."""
    result = integer(value)
    if result < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {result}")
    return result


def non_negative_float(value: str) -> float:
    """A finite number ≥ 0."""
    result = number(value)
    if not 0 <= result < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {value}")
    return result


def parse_affinity(value: str) -> list[int]:
    """A CPU list such as ``0,2-3``."""
    try:
        return spead2.parse_range_list(value)
    except ValueError:
        raise _expected("a list of CPU numbers and ranges such as 0,2-3", value) from None


def parse_dtype(value: str) -> np.dtype:
    """A numpy data type such as ``<c8`` or ``float32``."""
    try:
        return np.dtype(value)
    except TypeError:
        raise _expected("a numpy data type such as <c8, >u2 or float32", value) from None


# -- parsers ------------------------------------------------------------------------------


def make_parser(
    prog: str | None,
    description: str,
    examples: Iterable[tuple[str, str]] = (),
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """An argument parser whose ``--help`` shows ``description`` as written, then ``examples``.

    Both are plain text for a terminal (the module docstrings, with their
    markup, are for the documentation); ``examples`` are ``(command, what it
    does)`` pairs.
    """
    examples = list(examples)
    width = max((len(command) for command, _ in examples), default=0)
    lines = [f"  {command:<{width}}  # {what}" for command, what in examples]
    epilog = "examples:\n" + "\n".join(lines) if lines else None
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
    )


# -- options shared by several tools -------------------------------------------------------


def add_log_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--log LEVEL`` (default INFO)."""
    parser.add_argument(
        "--log", metavar="LEVEL", type=parse_log_level, default="INFO", help="Log level [INFO]"
    )


def setup_logging(level: str) -> None:
    """Log to stderr as ``LEVEL:logger:message``, like the reference tools."""
    logging.basicConfig(level=getattr(logging, level))


def _add_ibv_arguments(group: argparse._ArgumentGroup, prefix: str) -> None:
    # Defaults are None so that an explicit use can be told from the default
    # and refused; the help shows the reference's defaults.
    group.add_argument(f"--{prefix}ibv", action="store_true", help="Use ibverbs [not supported]")
    group.add_argument(
        f"--{prefix}ibv-vector", type=integer, metavar="N", default=None,
        help="Completion vector, or -1 to use polling [0] (ibverbs only: not supported)",
    )
    group.add_argument(
        f"--{prefix}ibv-max-poll", type=integer, default=None,
        help="Maximum number of times to poll in a row [10] (ibverbs only: not supported)",
    )


def _add_thread_arguments(group: argparse._ArgumentGroup, prefix: str) -> None:
    group.add_argument(
        f"--{prefix}affinity", type=parse_affinity, default=None,
        dest=f"{prefix.replace('-', '_')}affinity",
        help="List of CPUs to pin threads to [no affinity]",
    )
    group.add_argument(
        f"--{prefix}threads", type=positive_int, default=1,
        dest=f"{prefix.replace('-', '_')}threads", help="Number of worker threads [1]",
    )


def refuse_ibverbs(parser: argparse.ArgumentParser, args: argparse.Namespace, prefix: str = "") -> None:
    """Fail (argparse error, exit 2) if any ibverbs option was given."""
    dest = prefix.replace("-", "_")
    for name in ("ibv", "ibv_vector", "ibv_max_poll"):
        value = getattr(args, dest + name)
        if value not in (None, False):
            option = f"--{prefix}{name.replace('_', '-')}"
            parser.error(f"{option}: {_IBV_REASON}")


def add_receiver_arguments(
    group: argparse._ArgumentGroup, *, io_prefix: str = "", mem_pool: bool = True
) -> None:
    """The receive-stream options of ``spead2_recv`` (and, prefixed, of ``spead2_bench master``).

    ``io_prefix`` (e.g. ``"recv-"``) is put before ``buffer``, ``bind``, the
    ibverbs options, ``affinity`` and ``threads``, as in the reference bench.
    """
    group.add_argument("--memcpy-nt", action="store_true", help="Use non-temporal memcpy")
    group.add_argument(
        "--concurrent-heaps", type=positive_int, default=4,
        help="Maximum number of in-flight heaps per substream [4]",
    )
    group.add_argument(
        "--substreams", type=positive_int, default=1, help="Number of parallel substreams [1]"
    )
    group.add_argument(
        "--ring-heaps", type=positive_int, default=4, help="Ring buffer capacity in heaps [4]"
    )
    if mem_pool:
        group.add_argument("--mem-pool", action="store_true", help="Use a memory pool")
        group.add_argument(
            "--mem-lower", type=non_negative_int, default=16384,
            help="Minimum allocation which will use the memory pool [16384]",
        )
        group.add_argument(
            "--mem-upper", type=non_negative_int, default=33554432,
            help="Maximum allocation which will use the memory pool [33554432]",
        )
    group.add_argument(
        "--mem-max-free", type=non_negative_int, default=12, help="Maximum free memory buffers [12]"
    )
    group.add_argument(
        "--mem-initial", type=non_negative_int, default=8, help="Initial free memory buffers [8]"
    )
    group.add_argument(
        "--packet", type=positive_int, default=None,
        help="Maximum packet size to accept [UDP 9200, TCP 65536]",
    )
    dest = io_prefix.replace("-", "_")
    group.add_argument(
        f"--{io_prefix}buffer", type=non_negative_int, default=None, dest=f"{dest}buffer",
        help="Socket buffer size [UDP 8388608, TCP 212992]",
    )
    group.add_argument(f"--{io_prefix}bind", default=None, dest=f"{dest}bind", help="Interface address")
    _add_ibv_arguments(group, io_prefix)
    _add_thread_arguments(group, io_prefix)


def add_sender_arguments(
    group: argparse._ArgumentGroup, *, io_prefix: str = "", packet: bool = True, rate: bool = True
) -> None:
    """The send-stream options of ``spead2_send`` (and, prefixed, of ``spead2_bench master``)."""
    group.add_argument("--addr-bits", type=positive_int, default=40, help="Heap address bits [40]")
    if packet:
        group.add_argument(
            "--packet", type=positive_int, default=1472, help="Maximum packet size to send [1472]"
        )
    group.add_argument(
        "--burst", metavar="BYTES", type=non_negative_int, default=65536, help="Burst size [65536]"
    )
    group.add_argument(
        "--burst-rate-ratio", metavar="RATIO", type=number, default=1.05,
        help="Hard rate limit, relative to --rate [1.05]",
    )
    group.add_argument(
        "--max-heaps", metavar="HEAPS", type=positive_int, default=4,
        help="Maximum heaps in flight [4]",
    )
    group.add_argument(
        "--rate-method", metavar="METHOD", type=parse_rate_method,
        default=spead2.send.RateMethod.AUTO, help="Method for rate limiting (SW/HW/AUTO)",
    )
    if rate:
        group.add_argument(
            "--rate", metavar="Gb/s", type=non_negative_float, default=0.0,
            help="Transmission rate bound [no limit]",
        )
    group.add_argument("--ttl", type=non_negative_int, default=None, help="TTL for multicast target")
    dest = io_prefix.replace("-", "_")
    group.add_argument(
        f"--{io_prefix}buffer", type=non_negative_int, default=None, dest=f"{dest}buffer",
        help="Socket buffer size [UDP 524288, TCP 212992]",
    )
    group.add_argument(f"--{io_prefix}bind", default=None, dest=f"{dest}bind", help="Interface address")
    _add_ibv_arguments(group, io_prefix)
    _add_thread_arguments(group, io_prefix)


def apply_affinity(cpus: list[int] | None) -> list[int] | None:
    """Pin the calling thread to the first CPU; the thread-pool affinity is the rest, rotated.

    This is the reference's rule: with ``--affinity 0,1,2`` the main thread
    runs on CPU 0 and the pool's threads on ``[1, 2, 0]``.
    """
    if not cpus:
        return None
    spead2.ThreadPool.set_affinity(cpus[0])
    return cpus[1:] + cpus[:1]


# -- receive settings ------------------------------------------------------------------

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
class ReceiverSettings:
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
    buffer: int | None = None
    bind: str | None = None
    affinity: list[int] | None = None
    threads: int = 1
    tcp: bool = False
    pyspead: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, io_prefix: str = "") -> ReceiverSettings:
        """Collect the settings from parsed arguments (see :func:`add_receiver_arguments`)."""
        return cls(**_collect(cls, args, io_prefix))

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
class SenderSettings:
    """Send-stream settings (the reference's ``SenderOptions`` plus the protocol options)."""

    addr_bits: int = 40
    packet: int = spead2.send.StreamConfig.DEFAULT_MAX_PACKET_SIZE
    burst: int = spead2.send.StreamConfig.DEFAULT_BURST_SIZE
    burst_rate_ratio: float = spead2.send.StreamConfig.DEFAULT_BURST_RATE_RATIO
    max_heaps: int = spead2.send.StreamConfig.DEFAULT_MAX_HEAPS
    rate_method: spead2.send.RateMethod = spead2.send.RateMethod.AUTO
    rate: float = 0.0  # Gbit/s
    ttl: int | None = None
    buffer: int | None = None
    bind: str | None = None
    affinity: list[int] | None = None
    threads: int = 1
    tcp: bool = False
    pyspead: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace, io_prefix: str = "") -> SenderSettings:
        """Collect the settings from parsed arguments (see :func:`add_sender_arguments`)."""
        return cls(**_collect(cls, args, io_prefix))

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


# -- running ---------------------------------------------------------------------------


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is absent on some platforms
        return None
    return uvloop.new_event_loop


def prog_name(default: str) -> str:
    """The program name for messages: the script's name when run as one, else ``default``.

    Under ``python -m spead2.tools.send`` ``sys.argv[0]`` is the module's
    path, which would make a misleading name.
    """
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name.startswith("spead2_") else default


def run_main(prog: str, coro: Coroutine[Any, Any, int]) -> int:
    """Run a tool's main coroutine on uvloop (where installed) and return its exit status.

    Errors from the operating system or the library's argument checks (a
    refused connection, an address in use, a non-multicast ``--ttl``
    target…) and a missing optional package end the tool with
    ``<prog>: error: <message>`` and status 1, rather than a traceback.
    """
    try:
        return asyncio.run(coro, loop_factory=_loop_factory())
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        print(f"{prog}: error: {error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # tools that do not handle SIGINT themselves
        return 1


def error_message(exc: BaseException) -> str:
    """What an error says to a person: its message, without the exception's class name.

    An ``OSError`` says its reason without the ``[Errno N]`` prefix, naming
    the file if there is one.
    """
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or f"{type(exc).__name__} (no details)"


def format_stats(stats: Iterable[tuple[str, int]]) -> list[str]:
    """``name: value`` lines, one per statistic."""
    return [f"{name}: {value}" for name, value in stats]
