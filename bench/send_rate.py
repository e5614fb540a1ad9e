"""How closely a rate-limited UDP send stream achieves the requested rate over loopback.

For each requested rate (10 Mb/s .. 1 Gb/s by default) a ``spead2.send.UdpStream``
(or ``spead2.send.asyncio.UdpStream`` with ``--mode asyncio``) sends about
``--duration`` seconds' worth of heaps to a plain UDP socket that a separate
*process* drains. The achieved rate is measured twice, each as the slope of
a least-squares fit of cumulative bytes against time (so the burst the rate
limiter allows at the start does not bias it):

* send side: bytes handed to the stream against the time each ``send_heap``
  (or heap future) completed, from the second heap on (the first rides on
  the burst the limiter allows at the start);
* receive side: datagram bytes against their arrival times.

Rates count whole packets (SPEAD header, pointers and payload: the UDP
payload), as ``StreamConfig.rate`` does. Run from the repository root:

    python bench/send_rate.py [--mode sync|asyncio|both] [--rates 10,100,1000] [--duration 2]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import spead2  # noqa: E402
import spead2.send  # noqa: E402
from spead2.send import asyncio as send_asyncio  # noqa: E402
from spead2.send._network_streams import UdpStream  # noqa: E402

#: The datagram that tells the receiver a run is over (not a valid SPEAD packet).
_END = b"END!"
#: The receiver keeps one (time, bytes) point per this many datagrams.
_SAMPLE_EVERY = 8
_RECV_BUFFER = 4 * 1024 * 1024


def _slope(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against ``times`` (nan with fewer than 2 points)."""
    if len(times) < 2:
        return float("nan")
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    t -= t.mean()
    return float(np.dot(t, v - v.mean()) / np.dot(t, t))


def _receiver(conn: Connection) -> None:
    """Drain datagrams run after run; report (packets, bytes, rate) per run."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)
    sock.bind(("127.0.0.1", 0))
    conn.send(sock.getsockname()[1])
    buffer = bytearray(65536)
    clock = time.perf_counter
    while conn.recv() == "run":
        conn.send("ready")
        times: list[float] = []
        totals: list[int] = []
        packets = 0
        total = 0
        sock.settimeout(10.0)
        while True:
            try:
                size = sock.recv_into(buffer)
            except TimeoutError:
                break
            if size == len(_END) and buffer[:size] == _END:
                break
            packets += 1
            total += size
            if packets % _SAMPLE_EVERY == 1:
                times.append(clock())
                totals.append(total)
        conn.send((packets, total, _slope(times, totals)))
    sock.close()


def _make_heap(heap_size: int) -> spead2.send.Heap:
    ig = spead2.send.ItemGroup()
    ig.add_item(0x1000, "payload", "bench data", shape=(heap_size,), dtype=np.uint8,
                value=(np.arange(heap_size) % 251).astype(np.uint8))
    return ig.get_heap(descriptors="none", data="all")


def _config(args: argparse.Namespace, rate: float) -> spead2.send.StreamConfig:
    return spead2.send.StreamConfig(
        max_packet_size=args.packet_size,
        rate=0.0 if args.per_heap_rate else rate,
        burst_size=args.burst_size,
        burst_rate_ratio=args.burst_rate_ratio,
        max_heaps=8,
    )


def _send_sync(
    args: argparse.Namespace, pool: spead2.ThreadPool, port: int, rate: float, n_heaps: int
) -> tuple[list[float], list[int]]:
    stream = UdpStream(pool, [("127.0.0.1", port)], _config(args, rate), buffer_size=_RECV_BUFFER)
    heap = _make_heap(args.heap_size)
    heap_rate = rate if args.per_heap_rate else -1.0
    clock = time.perf_counter
    # One point per completed heap (none at the start: the first burst goes at once).
    times: list[float] = []
    totals: list[int] = []
    total = 0
    for _ in range(n_heaps):
        total += stream.send_heap(heap, rate=heap_rate)
        times.append(clock())
        totals.append(total)
    return times, totals


def _send_asyncio(
    args: argparse.Namespace, pool: spead2.ThreadPool, port: int, rate: float, n_heaps: int
) -> tuple[list[float], list[int]]:
    async def run() -> tuple[list[float], list[int]]:
        stream = send_asyncio.UdpStream(
            pool, [("127.0.0.1", port)], _config(args, rate), buffer_size=_RECV_BUFFER
        )
        heap = _make_heap(args.heap_size)
        heap_rate = rate if args.per_heap_rate else -1.0
        clock = time.perf_counter
        times: list[float] = []
        totals: list[int] = []
        total = 0
        pending: list[asyncio.Future[int]] = []
        for _ in range(n_heaps):
            # Keep several heaps queued, as an application would.
            if len(pending) == 4:
                total += await pending.pop(0)
                times.append(clock())
                totals.append(total)
            pending.append(stream.async_send_heap(heap, rate=heap_rate))
        for future in pending:
            total += await future
            times.append(clock())
            totals.append(total)
        return times, totals

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["sync", "asyncio", "both"], default="both")
    parser.add_argument("--rates", default="10,30,100,300,600,1000",
                        help="comma-separated requested rates in Mb/s (default %(default)s)")
    parser.add_argument("--duration", type=float, default=2.0,
                        help="approximate seconds per rate (default %(default)s)")
    parser.add_argument("--heap-size", type=int, default=65536)
    parser.add_argument("--packet-size", type=int, default=1472)
    parser.add_argument("--burst-size", type=int, default=spead2.send.StreamConfig.DEFAULT_BURST_SIZE)
    parser.add_argument("--burst-rate-ratio", type=float,
                        default=spead2.send.StreamConfig.DEFAULT_BURST_RATE_RATIO)
    parser.add_argument("--per-heap-rate", action="store_true",
                        help="leave the stream unlimited and pass the rate to each send_heap")
    args = parser.parse_args()

    rates_mbps = [float(r) for r in args.rates.split(",")]
    modes = ["sync", "asyncio"] if args.mode == "both" else [args.mode]
    senders = {"sync": _send_sync, "asyncio": _send_asyncio}

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    receiver = ctx.Process(target=_receiver, args=(child,), daemon=True)
    receiver.start()
    port = parent.recv()
    pool = spead2.ThreadPool()
    end = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    print(f"UDP loopback, heaps of {args.heap_size} B, max_packet_size {args.packet_size}, "
          f"burst_size {args.burst_size}, burst_rate_ratio {args.burst_rate_ratio}, "
          f"{'per-heap' if args.per_heap_rate else 'stream'} rate, ~{args.duration} s per rate")
    header = (f"{'mode':>7} {'requested':>10} {'send-side':>10} {'error':>7} "
              f"{'recv-side':>10} {'error':>7} {'lost':>7}")
    print(header)
    print(f"{'':>7} {'Mb/s':>10} {'Mb/s':>10} {'%':>7} {'Mb/s':>10} {'%':>7} {'%':>7}")
    worst = 0.0
    for mode in modes:
        for mbps in rates_mbps:
            rate = mbps * 1e6 / 8
            # At least 100 heaps, so that the burst granularity (one heap or so) does
            # not bias the send-side fit.
            n_heaps = max(100, int(rate * args.duration / args.heap_size))
            parent.send("run")
            parent.recv()
            times, totals = senders[mode](args, pool, port, rate, n_heaps)
            time.sleep(0.05)  # let the last datagrams land before the end marker
            end.sendto(_END, ("127.0.0.1", port))
            packets, received, recv_rate = parent.recv()
            # Skip the first heap: it rides on the burst allowed at the start.
            send_rate = _slope(times[1:], totals[1:])
            send_err = (send_rate / rate - 1) * 100
            recv_err = (recv_rate / rate - 1) * 100
            lost = (1 - received / totals[-1]) * 100
            worst = max(worst, abs(send_err), abs(recv_err))
            print(f"{mode:>7} {mbps:10.1f} {send_rate * 8 / 1e6:10.2f} {send_err:+7.2f} "
                  f"{recv_rate * 8 / 1e6:10.2f} {recv_err:+7.2f} {lost:7.2f}", flush=True)
    parent.send("stop")
    receiver.join(5)
    print(f"worst error: {worst:.2f}%")


if __name__ == "__main__":
    main()
