"""UDP receive at fixed rates: how often is a one-second pass lossless, for each implementation?

Workload 5's bisection asks for *every* heap of two passes; on a shared VM a
single stall of a few milliseconds (longer than the socket buffer lasts)
fails a pass at any rate, so its answer is a random variable that swings
between runs. This command measures the distribution instead: at each rate,
``--passes`` passes of about one second each (the reference's C++ sender,
1 MiB heaps, the receivers of workload 5, sender and receiver pinned to
their own CPUs), alternating the implementations pass by pass, and reports
per implementation the fraction of passes with no heap lost and the mean
share of heaps lost.

    SPEAD2_REFERENCE_PYTHON=/path/to/reference/venv/bin/python \\
        python bench/udp_fixed_rate.py --rates 6 9 12 --passes 20 [--packet 9000]

Without the variable only our receiver is measured (and our sender used).
Every pass is bounded in heaps and time; all traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(BENCH_DIR, "workloads"))

import udp_recv  # noqa: E402
from _harness import IMPLS, Context  # noqa: E402

REFERENCE_ENV = "SPEAD2_REFERENCE_PYTHON"


def measure(ctx: Context, rates_gbps: list[float], passes: int, packet: int,
            seconds: float) -> dict[str, dict[float, list[float]]]:
    """Per implementation and rate, the share of heaps lost in each pass."""
    impls = ctx.impls
    cpus = ctx.cpus()
    send_cpu, recv_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    sender = ctx.spawn("udp_send.py", "reference" if "reference" in impls else "ours", "sender",
                       {}, cpu=send_cpu)
    receivers = {impl: ctx.spawn("udp_recv.py", impl, "receiver", {}, cpu=recv_cpu)
                 for impl in impls}
    ports = {impl: udp_recv.free_port() for impl in impls}
    losses: dict[str, dict[float, list[float]]] = {impl: {} for impl in impls}
    try:
        for rate_gbps in rates_gbps:
            rate = rate_gbps * 1e9 / 8
            heaps = max(16, int(rate * seconds / udp_recv.HEAP_SIZE))
            for i in range(passes):
                for impl in (impls if i % 2 == 0 else impls[::-1]):
                    _, got = udp_recv.run_pass(sender, receivers[impl], ports[impl], packet,
                                               rate, heaps, grace=1.0)
                    lost = (heaps - got["complete"]) / heaps
                    losses[impl].setdefault(rate_gbps, []).append(lost)
                    ctx.log(f"{rate_gbps:g} Gb/s pass {i} {impl}: {got['complete']}/{heaps} heaps")
    finally:
        for peer in [sender, *receivers.values()]:
            peer.close()
    return losses


def table(losses: dict[str, dict[float, list[float]]], packet: int) -> str:
    """Markdown: per rate, each implementation's lossless passes and mean heaps lost."""
    impls = list(losses)
    rates = sorted({rate for by_rate in losses.values() for rate in by_rate})
    head = "| rate (Gb/s) | " + " | ".join(
        f"{impl}: lossless passes | {impl}: heaps lost (mean)" for impl in impls) + " |"
    lines = [f"{packet}-byte packets, 1 MiB heaps", "", head,
             "|--:|" + "--:|--:|" * len(impls)]
    for rate in rates:
        cells = []
        for impl in impls:
            runs = losses[impl].get(rate, [])
            clean = sum(1 for lost in runs if lost == 0)
            mean = 100 * sum(runs) / len(runs) if runs else float("nan")
            cells += [f"{clean}/{len(runs)}", f"{mean:.2f} %"]
        lines.append(f"| {rate:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[6.0, 9.0, 12.0],
                        metavar="GBPS", help="send rates in Gb/s (default 6 9 12)")
    parser.add_argument("--passes", type=int, default=10, help="passes per rate and implementation")
    parser.add_argument("--packet", type=int, default=9000, help="packet size in bytes")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of a pass")
    args = parser.parse_args(argv)
    if not 64 <= args.packet <= 9000:
        parser.error(f"--packet: {args.packet} is outside 64..9000 bytes")
    if args.passes < 1:
        parser.error(f"--passes: {args.passes} is not at least 1")
    if not 0 < args.seconds <= 10:
        parser.error(f"--seconds: {args.seconds:g} is outside (0, 10]")
    for rate in args.rates:
        if not 0 < rate <= 100:
            parser.error(f"--rates: {rate:g} Gb/s is outside (0, 100]")
    pythons = {"ours": sys.executable}
    reference = os.environ.get(REFERENCE_ENV, "")
    if reference and os.access(reference, os.X_OK):
        pythons["reference"] = reference
    ctx = Context(quick=False, repeats=1, pythons=pythons)
    assert set(ctx.impls) <= set(IMPLS)
    losses = measure(ctx, args.rates, args.passes, args.packet, args.seconds)
    print(table(losses, args.packet))
    return 0


if __name__ == "__main__":
    sys.exit(main())

