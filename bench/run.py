"""The benchmark command: every workload of docs/performance.md, ours beside the reference spead2.

Usage (from anywhere; paths are relative to the repository)::

    python bench/run.py [--quick] [--workloads NAME ...] [--repeats N]
                        [--json out.json] [--markdown out.md]

Each workload runs in worker subprocesses (``bench/workloads/<name>.py``),
ours under this interpreter and the reference under the interpreter named by
the environment variable ``SPEAD2_REFERENCE_PYTHON`` (both with ``-E -s``, so
the reference can never import this package); if the variable is unset or
names no executable, only our figures are reported. Ours and the reference
alternate repeat by repeat; the table gives medians and the ratio
ours/reference, and marks each target met or missed. ``--quick``
(tiny sizes, one repeat, a coarse bisection) finishes in well under a minute.

Workloads: ``decode-large`` (1, 7a), ``decode-small`` (2), ``encode`` (3),
``asyncio`` (4), ``udp-recv`` (5, 7b), ``udp-send`` (6), ``chunks`` (8); numbers
work too.
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, os.path.join(BENCH_DIR, "workloads"))
sys.path.insert(0, REPO_ROOT)  # our package, for --in-process

from _harness import Context, Row  # noqa: E402

#: Workload name → (module, number).
WORKLOADS = {
    "decode-large": ("decode_large", "1"),
    "decode-small": ("decode_small", "2"),
    "encode": ("encode_bytes", "3"),
    "asyncio": ("recv_asyncio", "4"),
    "udp-recv": ("udp_recv", "5"),
    "udp-send": ("udp_send", "6"),
    "chunks": ("recv_chunks", "8"),
}
#: The environment variable naming the reference's interpreter.
REFERENCE_ENV = "SPEAD2_REFERENCE_PYTHON"


def select_workloads(names: list[str] | None) -> list[str]:
    """Workload names from names or numbers (all of them by default), in the table's order."""
    if not names:
        return list(WORKLOADS)
    by_number = {number: name for name, (_, number) in WORKLOADS.items()}
    chosen = set()
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part in WORKLOADS:
                chosen.add(part)
            elif part in by_number:
                chosen.add(by_number[part])
            else:
                raise SystemExit(f"unknown workload {part!r}: choose from "
                                 f"{', '.join(WORKLOADS)} (or 1-6, 8)")
    return [name for name in WORKLOADS if name in chosen]


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""


def _run_text(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(pythons: dict[str, str]) -> dict[str, Any]:
    """What the figures were measured on: CPUs, memory, kernel, interpreters, load."""
    cpuinfo = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor())
    meminfo = _read("/proc/meminfo").split()
    mem_kib = int(meminfo[1]) if len(meminfo) > 1 and meminfo[0] == "MemTotal:" else 0
    versions = {}
    probe = ("import sys, numpy, spead2; print(sys.version.split()[0], numpy.__version__, "
             "spead2.__version__)")
    for impl, python in pythons.items():
        argv = [python, "-E", "-s", "-c", probe]
        if impl == "ours":
            argv = [python, "-E", "-s", "-c", f"import sys; sys.path.insert(0, {REPO_ROOT!r}); "
                    + probe]
        parts = _run_text(argv).split()
        if len(parts) == 3:
            versions[impl] = {"python": parts[0], "numpy": parts[1], "spead2": parts[2],
                              "interpreter": python}
    from udp_recv import RECV_BUFFER, granted_buffer

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "versions": versions,
        "commit": _run_text(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"]),
        "rmem_max": int(_read("/proc/sys/net/core/rmem_max").strip() or 0),
        "udp_buffer_requested": RECV_BUFFER,
        "udp_buffer_granted": granted_buffer(),
        "load_before": os.getloadavg(),
    }


def fmt(value: float | None, unit: str) -> str:
    """A figure with sensible precision for its unit."""
    if value is None:
        return "—"
    if unit == "heaps/s":
        return f"{value:,.0f}"
    if unit == "% error":
        return f"{value:+.2f}"
    if unit == "MiB":
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table ("spread": (max − min) / median of the repeats)."""
    lines = [
        "| # | workload | unit | ours | reference | ours/ref | target | met? | spread ours / ref "
        "| notes |",
        "|---|---|---|--:|--:|--:|---|---|--:|---|",
    ]
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "—"
        status = {"met": "✅ met", "missed": "❌ missed"}.get(row.status, "")
        spreads = [row.spread(impl) for impl in ("ours", "reference")]
        spread = " / ".join("—" if s is None else f"{s:.0f}%" for s in spreads)
        if row.unit == "% error":
            spread = "—"  # a spread relative to an error near zero means nothing
        lines.append(
            f"| {row.number} | {row.name} | {row.unit} | {fmt(row.ours, row.unit)} | "
            f"{fmt(row.reference, row.unit)} | {ratio} | {row.target_text()} | {status} | "
            f"{spread} | {row.note} |"
        )
    return "\n".join(lines)


def bisection_text(rows: list[Row]) -> str:
    """The steps of every UDP bisection (target → achieved, GOOD/BAD), as Markdown."""
    lines = []
    for row in rows:
        for detail in row.details:
            steps = ", ".join(
                f"{'∞' if s['target_gbps'] == 0 else format(s['target_gbps'], '.2f')}→"
                f"{s['actual_gbps']:.2f} {'GOOD' if s['good'] else 'BAD'}"
                for s in detail["steps"]
            )
            lines.append(f"- {row.number} {detail['impl']}: **{detail['rate'] * 8 / 1e9:.2f}** "
                         f"Gb/s — {steps}")
    if not lines:
        return ""
    return "UDP bisection steps (Gb/s requested→achieved; ∞ = unlimited):\n\n" + "\n".join(lines)


def machine_text(info: dict[str, Any]) -> str:
    """The machine and run description, as Markdown."""
    versions = "; ".join(
        f"{impl}: spead2 {v['spead2']}, Python {v['python']}, numpy {v['numpy']}"
        for impl, v in info["versions"].items()
    )
    return "\n".join([
        f"- date: {info['date']}, commit {info['commit'] or 'unknown'}",
        f"- CPU: {info['cpu_model']}, {info['nproc']} CPUs available (`nproc`); "
        f"memory {info['memory_gib']} GiB; kernel {info['kernel']}",
        f"- {versions}",
        f"- UDP receive buffer asked {info['udp_buffer_requested'] >> 20} MiB, granted "
        f"{info['udp_buffer_granted'] / 2**20:.0f} MiB (net.core.rmem_max = "
        f"{info['rmem_max']})",
        "- load average (1, 5, 15 min) before: "
        + ", ".join(f"{x:.2f}" for x in info["load_before"])
        + "; after: " + ", ".join(f"{x:.2f}" for x in info["load_after"]),
        f"- mode: {info['mode']}, {info['repeats']} repeat(s) per figure, "
        f"total {info['seconds']:.0f} s",
    ])


def write_plot_data(path: str, rows: list[Row]) -> None:
    """Workload 5's medians in the format of docs/_data/lossless_rate.csv."""
    lines = ["implementation,packet_size,lossless_rate_gbps"]
    for row in sorted((r for r in rows if r.packet_size is not None),
                      key=lambda r: r.packet_size or 0):
        for impl, figure in (("ours", row.ours), ("reference", row.reference)):
            if figure is not None:
                lines.append(f"{impl},{row.packet_size},{figure:.3g}")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen workloads and print (and optionally save) the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one repeat, coarse bisection (under a minute)")
    parser.add_argument("--workloads", nargs="+", metavar="NAME",
                        help=f"subset to run: {', '.join(WORKLOADS)} (or numbers 1-6, 8)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="worker runs per implementation and figure (default 3, quick 1)")
    parser.add_argument("--in-process", action="store_true",
                        help="run our one-shot workloads in this process, not a subprocess")
    parser.add_argument("--json", metavar="PATH", help="also write the full results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the report as Markdown")
    parser.add_argument("--udp-packet-sizes", type=int, nargs="+", metavar="BYTES",
                        default=[9000, 1472],
                        help="packet sizes of workload 5 (default 9000 1472; others add rows "
                             "5c, 5d, ... without a target)")
    parser.add_argument("--plot-data", metavar="PATH",
                        help="also write workload 5's medians as the docs' lossless_rate.csv")
    args = parser.parse_args(argv)
    for size in args.udp_packet_sizes:
        if not 64 <= size <= 9000:
            parser.error(f"--udp-packet-sizes: {size} is outside 64..9000 bytes")

    pythons = {"ours": sys.executable}
    reference = os.environ.get(REFERENCE_ENV, "")
    if reference and os.access(reference, os.X_OK):
        pythons["reference"] = reference
    else:
        print(f"{REFERENCE_ENV} is unset or not executable: reporting ours only",
              file=sys.stderr)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    ctx = Context(quick=args.quick, repeats=repeats, pythons=pythons, in_process=args.in_process,
                  udp_packet_sizes=tuple(args.udp_packet_sizes))
    info = machine_info(pythons)
    started = time.monotonic()
    rows: list[Row] = []
    for name in select_workloads(args.workloads):
        module_name, number = WORKLOADS[name]
        ctx.log(f"[{time.monotonic() - started:6.1f} s] workload {number} ({name}) ...")
        module = importlib.import_module(module_name)
        rows += module.run(ctx)
    rows.sort(key=lambda row: (row.number[0], row.number))
    info.update(load_after=os.getloadavg(), mode="quick" if args.quick else "full",
                repeats=repeats, seconds=time.monotonic() - started)
    command = "python bench/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    report = "\n\n".join(part for part in [
        table(rows), bisection_text(rows), machine_text(info),
        f"Command: `{REFERENCE_ENV}={reference or '(unset)'} {command.strip()}`",
    ] if part)
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as file:
            file.write(report + "\n")
    if args.plot_data:
        write_plot_data(args.plot_data, rows)
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"machine": info, "rows": [row.as_dict() for row in rows]}, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
