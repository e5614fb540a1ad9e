"""Soak test: our UDP sender → our UDP receiver over loopback for N minutes, RSS sampled.

Usage::

    python bench/soak.py                      # 10 minutes at half of --rate
    python bench/soak.py --minutes 0.5        # a quick check
    python bench/soak.py --find-max           # search the maximum lossless rate first

The sender runs in a subprocess (its own interpreter and GIL), sending heaps
of ``--heap-size`` bytes in ``--packet-size`` packets at ``--fraction`` ×
``--rate`` bytes/s (all packet bytes, as ``StreamConfig.rate`` counts them),
through ``spead2.send.UdpStream`` when the package exports it, else
``PacketGenerator`` packets paced over a plain socket. The receiver is a
``spead2.recv.Stream`` with a UDP reader in this process; a consumer thread
takes every heap and checks it (the cnt written into its payload, its
length). Every ``--sample`` seconds the receiver's RSS is read from
``/proc/self/status``.

The report gives heaps and packets sent, received, incomplete and lost,
datagrams dropped by the kernel (``/proc/net/udp``), the achieved rate, and
RSS min / max / slope (least squares, MiB per minute, over the samples after
the first 10% of the run). Exit status is 0 if nothing was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402

import spead2  # noqa: E402
import spead2.recv  # noqa: E402
import spead2.send  # noqa: E402

#: Default full rate (bytes/s): the maximum lossless rate measured with --find-max on the
#: 2-core development machine (see docs/robustness.md); the soak runs at --fraction of it.
DEFAULT_RATE = 450e6


# -- sender (subprocess) ------------------------------------------------------------------


def _make_heap(heap_size: int) -> tuple[spead2.send.Heap, np.ndarray]:
    group = spead2.send.ItemGroup()
    data = np.zeros(heap_size, np.uint8)
    group.add_item(0x1000, "data", "soak payload", (heap_size,), dtype="u1", value=data)
    # The heap references the array: writing the cnt into it changes what is sent next.
    return group.get_heap(descriptors="none", data="all"), data


def run_sender(args: argparse.Namespace) -> None:
    """Send heaps to ``args.port`` at ``args.rate`` for ``args.seconds``; print totals as JSON."""
    heap, data = _make_heap(args.heap_size)
    stamp = data[:8].view(">u8")
    endpoint = ("127.0.0.1", args.port)
    UdpStream = getattr(spead2.send, "UdpStream", None)
    if UdpStream is None:  # not exported from spead2.send yet: the module itself
        try:
            from spead2.send._network_streams import UdpStream
        except ImportError:
            pass
    packets_per_heap = sum(1 for _ in spead2.send.PacketGenerator(heap, 1, args.packet_size))
    end = time.monotonic() + args.seconds
    heaps = 0
    sent_bytes = 0
    start = time.monotonic()
    if UdpStream is not None:
        config = spead2.send.StreamConfig(
            max_packet_size=args.packet_size, rate=args.rate, burst_size=65536
        )
        stream = UdpStream(spead2.ThreadPool(), [endpoint], config, 4 << 20)
        while time.monotonic() < end:
            heaps += 1
            stamp[0] = heaps
            sent_bytes += stream.send_heap(heap, heaps)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            # Pace per heap: wait until the ideal time of this heap at the rate.
            ideal = start + sent_bytes / args.rate
            if ideal > now:
                time.sleep(ideal - now)
            heaps += 1
            stamp[0] = heaps
            for packet in spead2.send.PacketGenerator(heap, heaps, args.packet_size):
                sock.sendto(packet, endpoint)
                sent_bytes += len(packet)
    elapsed = time.monotonic() - start
    print(json.dumps({
        "heaps": heaps, "packets": heaps * packets_per_heap, "bytes": sent_bytes,
        "seconds": elapsed, "via": "UdpStream" if UdpStream is not None else "PacketGenerator",
    }))


# -- receiver --------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def kernel_drops(port: int) -> int:
    """Datagrams the kernel dropped for the UDP socket bound to ``port`` (0 if unknown)."""
    try:
        with open("/proc/net/udp") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) == port:
                    return int(fields[-1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class Consumer(threading.Thread):
    """Takes every heap and checks that its payload carries its cnt."""

    def __init__(self, stream: spead2.recv.Stream, heap_size: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.heap_size = heap_size
        self.complete = 0
        self.incomplete = 0
        self.wrong = 0
        self.highest = 0

    def run(self) -> None:
        for heap in self.stream:
            if not isinstance(heap, spead2.recv.Heap):
                self.incomplete += 1
                continue
            [item] = [i for i in heap.get_items() if i.id == 0x1000]
            view = memoryview(item)
            if len(view) != self.heap_size or int.from_bytes(view[:8]) != heap.cnt:
                self.wrong += 1
            self.complete += 1
            self.highest = max(self.highest, heap.cnt)


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    t = np.array([s[0] for s in samples])
    r = np.array([s[1] for s in samples], dtype=float) / (1 << 20)
    return float(np.polyfit(t / 60.0, r, 1)[0])


def soak(seconds: float, rate: float, args: argparse.Namespace, quiet: bool = False) -> dict[str, Any]:
    """Run sender and receiver for ``seconds`` at ``rate``; return the figures."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.buffer_size)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    stream = spead2.recv.Stream(
        spead2.ThreadPool(),
        spead2.recv.StreamConfig(max_heaps=4),
        spead2.recv.RingStreamConfig(heaps=16),
    )
    stream.add_udp_reader(rx, max_size=args.packet_size + 64)
    rx.close()
    consumer = Consumer(stream, args.heap_size)
    consumer.start()
    sender = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--role", "sender", "--port", str(port),
         "--rate", str(rate), "--fraction", "1", "--seconds", str(seconds),
         "--heap-size", str(args.heap_size), "--packet-size", str(args.packet_size)],
        stdout=subprocess.PIPE, text=True,
    )
    start = time.monotonic()
    samples: list[tuple[float, int]] = []
    next_sample = start
    while sender.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now - start, rss_bytes()))
            if not quiet:
                elapsed = now - start
                print(f"  t={elapsed:6.0f} s  RSS {samples[-1][1] / (1 << 20):7.1f} MiB  "
                      f"heaps {consumer.complete}  incomplete {consumer.incomplete}", flush=True)
            next_sample += args.sample
        time.sleep(0.2)
    assert sender.stdout is not None
    sent = json.loads(sender.stdout.read())
    # Let the receiver drain, then account for every datagram.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if stream.stats.packets + kernel_drops(port) >= sent["packets"]:
            break
        time.sleep(0.05)
    drops = kernel_drops(port)
    samples.append((time.monotonic() - start, rss_bytes()))
    stream.stop()
    consumer.join(10)
    stats = stream.stats
    warm = [s for s in samples if s[0] >= 0.1 * seconds] or samples
    rss = [s[1] for s in warm]
    return {
        "rate_requested": rate,
        "rate_achieved": sent["bytes"] / sent["seconds"],
        "seconds": sent["seconds"],
        "via": sent["via"],
        "heaps_sent": sent["heaps"],
        "heaps_complete": consumer.complete,
        "heaps_incomplete": consumer.incomplete,
        "heaps_wrong": consumer.wrong,
        "heaps_lost": sent["heaps"] - consumer.complete,
        "packets_sent": sent["packets"],
        "packets_counted": stats.packets,
        "kernel_drops": drops,
        "rss_min_mib": min(rss) / (1 << 20),
        "rss_max_mib": max(rss) / (1 << 20),
        "rss_slope_mib_per_min": slope_per_minute(warm),
        "samples": len(samples),
    }


def find_max(args: argparse.Namespace) -> float:
    """The highest rate (bytes/s) at which a 10 s run loses nothing, by doubling then bisecting."""
    low, high = 0.0, None
    low_achieved = 0.0
    rate = 25e6
    for _ in range(12):
        result = soak(10, rate, args, quiet=True)
        lossless = result["heaps_lost"] == 0 and result["kernel_drops"] == 0
        achieved = result["rate_achieved"]
        print(f"  {rate / 1e6:7.1f} MB/s requested, {achieved / 1e6:7.1f} MB/s achieved: "
              f"{'lossless' if lossless else 'LOSS'} ({result['heaps_lost']} heaps, "
              f"{result['kernel_drops']} datagrams dropped)", flush=True)
        if lossless and achieved >= 0.9 * rate:
            low, low_achieved = rate, achieved
        else:
            high = rate
        if high is None:
            rate *= 2
        elif high - low <= 0.1 * high:
            break
        else:
            rate = (low + high) / 2
    print(f"  highest lossless step: {low / 1e6:.1f} MB/s requested, "
          f"{low_achieved / 1e6:.1f} MB/s achieved", flush=True)
    return low


def main() -> None:
    """Parse arguments; run the sender role, or the soak (optionally after --find-max)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="soak duration (default 10)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="full rate in bytes/s (default: measured max lossless, %(default).3g)")
    parser.add_argument("--fraction", type=float, default=0.5, help="fraction of --rate to send at")
    parser.add_argument("--find-max", action="store_true",
                        help="measure the max lossless rate first and use it as --rate")
    parser.add_argument("--heap-size", type=int, default=1 << 20)
    parser.add_argument("--packet-size", type=int, default=8192)
    parser.add_argument("--buffer-size", type=int, default=8 << 20, help="receive socket buffer")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--role", default="soak", choices=["soak", "sender"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "sender":
        args.rate *= args.fraction
        run_sender(args)
        return
    if args.find_max:
        print("searching the maximum lossless rate (10 s per step) ...", flush=True)
        args.rate = find_max(args)
        print(f"maximum lossless rate: {args.rate / 1e6:.1f} MB/s", flush=True)
    rate = args.rate * args.fraction
    print(f"soak: {args.minutes} min at {rate / 1e6:.1f} MB/s ({args.fraction} × "
          f"{args.rate / 1e6:.1f} MB/s), heaps of {args.heap_size} B in {args.packet_size} B packets",
          flush=True)
    result = soak(60 * args.minutes, rate, args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"sent {result['heaps_sent']} heaps / {result['packets_sent']} packets via "
              f"{result['via']} at {result['rate_achieved'] / 1e6:.1f} MB/s over "
              f"{result['seconds']:.0f} s")
        print(f"received {result['heaps_complete']} complete heaps, {result['heaps_incomplete']} "
              f"incomplete, {result['heaps_wrong']} wrong; lost {result['heaps_lost']} heaps; "
              f"packets counted {result['packets_counted']}, kernel drops {result['kernel_drops']}")
        print(f"RSS min {result['rss_min_mib']:.1f} MiB, max {result['rss_max_mib']:.1f} MiB, "
              f"slope {result['rss_slope_mib_per_min']:+.3f} MiB/min ({result['samples']} samples)")
    sys.exit(0 if result["heaps_lost"] == 0 and result["heaps_wrong"] == 0 else 1)


if __name__ == "__main__":
    main()
