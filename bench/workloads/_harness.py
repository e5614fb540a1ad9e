"""Harness side of the benchmark workloads: running workers, alternating, result rows.

Imported by ``bench/run.py`` (never by a worker). A workload module exposes
``run(ctx: Context) -> list[Row]``; it asks the context to run its worker
script for each implementation, alternating ours and the reference repeat by
repeat (reversing the order every other repeat so neither always goes first),
and turns the medians into rows of the report.
"""

from __future__ import annotations

import importlib
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import _common

#: The directory of the workload scripts.
WORKLOADS_DIR = os.path.dirname(os.path.abspath(__file__))
#: The implementations, in the order a report lists them.
IMPLS = ("ours", "reference")


class WorkerError(RuntimeError):
    """A worker failed, timed out or answered nonsense; the message says which and why."""


@dataclass
class Row:
    """One line of the report: a figure for both implementations and how it compares.

    ``target`` is the minimum ratio ours/reference set as the target;
    ``limit`` an absolute upper bound on our figure (peak memory);
    ``show_ratio`` False for figures whose ratio means nothing (errors). With
    ``higher_is_better`` False a smaller figure is better (the ratio is still
    ours/reference).
    """

    number: str
    name: str
    unit: str
    ours: float | None
    reference: float | None
    target: float | None = None
    limit: float | None = None
    higher_is_better: bool = True
    show_ratio: bool = True
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)
    #: For workload 5: the packet size the row measured (for ``--plot-data``).
    packet_size: int | None = None

    @property
    def ratio(self) -> float | None:
        """Ours / reference, if both figures exist."""
        if not self.show_ratio or self.ours is None or self.reference is None \
                or self.reference == 0:
            return None
        return self.ours / self.reference

    @property
    def status(self) -> str:
        """"met", "missed", or "" when the row has no target (or lacks the figures)."""
        if self.limit is not None:
            if self.ours is None:
                return ""
            return "met" if self.ours <= self.limit else "missed"
        if self.target is None or self.ratio is None:
            return ""
        return "met" if self.ratio >= self.target else "missed"

    def spread(self, impl: str) -> float | None:
        """(max − min) / median of ``impl``'s samples, in %: how noisy the figure was."""
        values = [v for v in self.samples.get(impl, []) if v == v]
        if len(values) < 2 or not statistics.median(values):
            return None
        return (max(values) - min(values)) / abs(statistics.median(values)) * 100

    def target_text(self) -> str:
        """The target as the report shows it."""
        if self.limit is not None:
            return f"≤ {self.limit:.0f} {self.unit}"
        if self.target is not None:
            return f"≥ {self.target:.1f}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        """The row for the JSON report."""
        return {
            "number": self.number, "name": self.name, "unit": self.unit,
            "ours": self.ours, "reference": self.reference, "ratio": self.ratio,
            "target_ratio": self.target, "limit": self.limit, "status": self.status,
            "note": self.note, "samples": self.samples, "details": self.details,
            "spread_pct": {impl: self.spread(impl) for impl in self.samples},
        }


def median(values: list[float]) -> float | None:
    """Median of the finite values, None if there are none."""
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else None


class Peer:
    """A long-lived worker: JSON commands on its stdin, ``RESULT`` lines back."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=WORKLOADS_DIR,
        )
        self._buffer = b""

    def request(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one command and wait at most ``timeout`` seconds for its answer."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps(command) + "\n").encode())
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(f"{self.name} has exited: {self.stderr_tail()}") from None
        return self._read_result(timeout)

    def _read_result(self, timeout: float) -> dict[str, Any]:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    text = line.decode(errors="replace")
                    if text.startswith(_common.RESULT_PREFIX):
                        return json.loads(text[len(_common.RESULT_PREFIX):])  # type: ignore[no-any-return]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerError(f"{self.name} did not answer within {timeout:.0f} s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self._proc.wait(5)
                    raise WorkerError(
                        f"{self.name} exited with status {self._proc.returncode}: "
                        f"{self.stderr_tail()}"
                    )
                self._buffer += chunk

    def stderr_tail(self, lines: int = 8) -> str:
        """The last lines the worker wrote on stderr (its logs and tracebacks)."""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def close(self, timeout: float = 5.0) -> None:
        """Close its stdin (the worker exits at EOF); kill it if it lingers."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()


@dataclass
class Context:
    """What a workload needs from the harness: mode, interpreters, workers, a log."""

    quick: bool
    repeats: int
    pythons: dict[str, str]
    in_process: bool = False
    #: Packet sizes workload 5 measures (9000 and 1472 carry targets).
    udp_packet_sizes: tuple[int, ...] = (9000, 1472)
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)

    @property
    def impls(self) -> list[str]:
        """The implementations this run measures (ours, and the reference if available)."""
        return [impl for impl in IMPLS if impl in self.pythons]

    def argv(self, script: str, impl: str, params: dict[str, Any], role: str | None = None,
             python_of: str | None = None, cpu: int | None = None) -> list[str]:
        """The command that runs ``script`` for ``impl`` (under ``python_of``'s interpreter)."""
        python = self.pythons[python_of or impl]
        argv = [python, "-E", "-s", os.path.join(WORKLOADS_DIR, script),
                "--impl", impl, "--params", json.dumps(params)]
        if role is not None:
            argv += ["--role", role]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        return argv

    def run_worker(self, script: str, impl: str, params: dict[str, Any],
                   timeout: float) -> dict[str, Any]:
        """Run a one-shot worker and return its result (in-process for ours if asked)."""
        if impl == "ours" and self.in_process:
            module = importlib.import_module(script.removesuffix(".py"))
            return module.measure(params)  # type: ignore[no-any-return]
        try:
            proc = subprocess.run(
                self.argv(script, impl, params), capture_output=True, timeout=timeout,
                cwd=WORKLOADS_DIR, check=False,
            )
        except subprocess.TimeoutExpired:
            raise WorkerError(f"{script} ({impl}) did not finish within {timeout:.0f} s") from None
        for line in proc.stdout.decode(errors="replace").splitlines():
            if line.startswith(_common.RESULT_PREFIX):
                return json.loads(line[len(_common.RESULT_PREFIX):])  # type: ignore[no-any-return]
        tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-8:])
        raise WorkerError(f"{script} ({impl}) exited with status {proc.returncode}: {tail}")

    def spawn(self, script: str, impl: str, role: str, params: dict[str, Any],
              python_of: str | None = None, cpu: int | None = None) -> Peer:
        """Start a long-lived worker in ``role`` (pinned to ``cpu`` if given)."""
        return Peer(self.argv(script, impl, params, role, python_of, cpu),
                    f"{script} {role} ({impl})")

    def cpus(self) -> list[int]:
        """The CPUs this process may run on, in order."""
        return sorted(os.sched_getaffinity(0))

    def alternating(self) -> Iterator[tuple[int, str]]:
        """(repeat, impl) pairs: ours and the reference alternate, the order flipping each repeat."""
        for repeat in range(self.repeats):
            order = self.impls if repeat % 2 == 0 else self.impls[::-1]
            for impl in order:
                yield repeat, impl

    def measure_alternating(self, script: str, params: dict[str, Any],
                            timeout: float) -> dict[str, list[dict[str, Any]]]:
        """Run a one-shot worker ``repeats`` times per implementation, alternating."""
        results: dict[str, list[dict[str, Any]]] = {impl: [] for impl in self.impls}
        for _, impl in self.alternating():
            results[impl].append(self.run_worker(script, impl, params, timeout))
        return results


def figure_row(number: str, name: str, unit: str, results: dict[str, list[dict[str, Any]]],
               key: str, target: float | None = None, note: str = "") -> Row:
    """A row whose figures are the medians of ``key`` over each implementation's results."""
    samples = {impl: [float(r[key]) for r in rs if key in r] for impl, rs in results.items()}
    return Row(number, name, unit, median(samples.get("ours", [])),
               median(samples.get("reference", [])), target=target, note=note, samples=samples)


def error_rows(number: str, name: str, error: Exception) -> list[Row]:
    """A row saying a workload failed, so the report still shows every workload."""
    return [Row(number, name, "", None, None, note=f"failed: {error}")]
