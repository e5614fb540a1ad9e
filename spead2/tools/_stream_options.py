"""The stream options of the command-line tools: receive, send, ibverbs, threads.

The option names, defaults and meanings are those of the reference tools.
Options this implementation cannot honour (ibverbs) are still accepted by
the parser, so that ``--help`` lists them, but :func:`refuse_ibverbs` turns
any use of them into an argparse error saying why.
"""

from __future__ import annotations

import argparse

import numpy as np

import spead2
import spead2.send

from ._arguments import (
    integer,
    non_negative_float,
    non_negative_int,
    number,
    parse_affinity,
    parse_rate_method,
    positive_int,
)

__all__ = [
    "add_receiver_arguments",
    "add_sender_arguments",
    "apply_affinity",
    "check_sender_arguments",
    "refuse_ibverbs",
]

_IBV_REASON = (
    "this implementation has no ibverbs support (it sends and receives through "
    "ordinary sockets); remove the option"
)


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


def check_sender_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace, io_prefix: str = ""
) -> None:
    """Fail (argparse error, exit 2) on an ibverbs option or a ``--burst-rate-ratio`` below 1."""
    refuse_ibverbs(parser, args, io_prefix)
    if args.burst_rate_ratio < 1.0 or not np.isfinite(args.burst_rate_ratio):
        parser.error(f"--burst-rate-ratio must be at least 1.0 and finite, got {args.burst_rate_ratio}")
