"""Worker side of the benchmark workloads: choosing the implementation, memory figures, I/O.

Every workload script in this directory runs as a subprocess of ``bench/run.py``
(``python -E -s bench/workloads/<name>.py --impl ours|reference --params JSON``),
under the development interpreter for our package and under the interpreter
named by ``SPEAD2_REFERENCE_PYTHON`` for the reference. This module needs only
the standard library, so it imports under both; ``spead2`` is imported only
after :func:`use_implementation` has decided which one may be found.

A one-shot worker prints one line ``RESULT <json>`` on stdout. A long-lived
worker (``--role``) reads one JSON command per line on stdin and answers each
with one ``RESULT <json>`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

#: The repository root (its ``spead2`` directory is our implementation).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Prefix of the line that carries a worker's answer (anything else on stdout is ignored).
RESULT_PREFIX = "RESULT "
#: KiB per MiB, for the memory figures.
KIB_PER_MIB = 1024


def use_implementation(impl: str) -> Any:
    """Make ``import spead2`` find ``impl`` ("ours" or "reference") and return the module.

    The reference interpreter runs with ``-E -s`` and this script's directory
    first on ``sys.path``, so it can only find its own installed spead2; the
    check below makes sure of it (and that "ours" is the repository's).
    """
    if impl == "ours":
        sys.path.insert(0, REPO_ROOT)
    import spead2

    location = os.path.abspath(spead2.__file__)
    is_ours = location.startswith(os.path.join(REPO_ROOT, "spead2") + os.sep)
    if is_ours != (impl == "ours"):
        raise SystemExit(f"asked for the {impl} spead2 but imported {location}")
    return spead2


_POOL: Any = None


def thread_pool() -> Any:
    """One ``spead2.ThreadPool`` per worker process, shared by all its streams."""
    global _POOL
    if _POOL is None:
        import spead2

        _POOL = spead2.ThreadPool()
    return _POOL


def status_kib(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or -1 if unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0); False if the kernel refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak RSS growth over a baseline taken at construction (after the inputs exist).

    The peak is reset at the baseline when the kernel allows it, so memory the
    preparation used (encoding the input, say) does not count; otherwise
    ``ru_maxrss`` would include it, and ``reset`` is reported False. With
    ``collect`` (the default) cyclic garbage is collected before the baseline.
    """

    def __init__(self, collect: bool = True) -> None:
        if collect:
            import gc

            gc.collect()
        self.reset = reset_peak_rss()
        self.baseline_kib = status_kib("VmRSS")

    def figures(self) -> dict[str, Any]:
        """Baseline, peak and peak growth in MiB (``ru_maxrss`` if VmHWM is missing)."""
        peak = status_kib("VmHWM")
        if peak < 0:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {
            "rss_baseline_mib": self.baseline_kib / KIB_PER_MIB,
            "rss_peak_mib": peak / KIB_PER_MIB,
            "rss_growth_mib": (peak - self.baseline_kib) / KIB_PER_MIB,
            "rss_peak_was_reset": self.reset,
        }


def slope(times: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against ``times`` (bench/send_rate.py's method)."""
    n = len(times)
    if n < 2:
        return float("nan")
    mean_t = sum(times) / n
    mean_v = sum(values) / n
    num = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True))
    den = sum((t - mean_t) ** 2 for t in times)
    return num / den if den else float("nan")


def emit(result: dict[str, Any]) -> None:
    """Write one answer line on stdout."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The common worker command line: ``--impl``, ``--params`` and an optional ``--role``."""
    parser = argparse.ArgumentParser(description="benchmark worker (run by bench/run.py)")
    parser.add_argument("--impl", choices=["ours", "reference", "none"], required=True)
    parser.add_argument("--params", default="{}", help="JSON object of workload parameters")
    parser.add_argument("--role", default=None, help="long-lived role (reads commands on stdin)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    return args


def worker_main(measure: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Entry point of a one-shot worker: run ``measure(params)`` and print its result."""
    args = parse_args()
    use_implementation(args.impl)
    emit(measure(json.loads(args.params)))


def serve(handle: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Answer JSON commands from stdin until EOF or until ``handle`` returns None."""
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = handle(json.loads(line))
        if reply is None:
            break
        emit(reply)
