"""Smoke test of the benchmark command: ``bench/run.py --quick`` runs every workload and prints the table.

No thresholds: the figures depend on the machine. The reference columns are
filled only when ``SPEAD2_REFERENCE_PYTHON`` names the reference's
interpreter in the environment of the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Every row the full command reports, in order.
ROWS = ["1", "1b", "2a", "2b", "2c", "2d", "3a", "3b", "4", "4b", "5a", "5b",
        "6a", "6b", "6c", "6d", "6e", "6f", "7a", "7b", "8", "8b"]


@pytest.mark.timeout(240)
def test_quick_run_completes_and_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=200, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("| # | workload | unit | ours | reference | ours/ref | target |")
    # Table rows start with "| " (the alignment row with "|-"); [1:] skips the header.
    numbers = [line.split("|")[1].strip() for line in lines if line.startswith("| ")][1:]
    assert numbers == ROWS
    assert "failed:" not in proc.stdout, proc.stdout
    report = json.loads(out.read_text())
    rows = {row["number"]: row for row in report["rows"]}
    for number in ROWS:
        assert rows[number]["ours"] is not None, rows[number]
        assert rows[number]["ours"] == rows[number]["ours"]  # not NaN
    # Our figures are positive rates (errors and memory growth may be any sign).
    for number in ROWS:
        if number not in ("6e", "6f", "7a", "7b"):
            assert rows[number]["ours"] > 0, rows[number]
    has_reference = os.access(os.environ.get("SPEAD2_REFERENCE_PYTHON", ""), os.X_OK)
    # Row 8 needs numba in each interpreter; one without it says so in the notes.
    assert all(
        (row["reference"] is not None) == has_reference
        for row in rows.values()
        if not row["note"].startswith("no numba")
    )
    assert report["machine"]["nproc"] >= 1


@pytest.mark.timeout(240)
def test_packet_size_sweep_writes_the_plot_data(tmp_path: Path) -> None:
    """--udp-packet-sizes adds a row per extra size; --plot-data writes the docs' CSV."""
    csv = tmp_path / "lossless_rate.csv"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--workloads", "udp-recv",
         "--udp-packet-sizes", "1472", "4000", "--plot-data", str(csv)],
        capture_output=True, text=True, timeout=200, cwd=tmp_path, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    numbers = [line.split("|")[1].strip() for line in proc.stdout.splitlines()
               if line.startswith("| ")][1:]
    assert numbers == ["5b", "5c", "7b"]
    lines = csv.read_text().splitlines()
    assert lines[0] == "implementation,packet_size,lossless_rate_gbps"
    ours = [line.split(",") for line in lines[1:] if line.startswith("ours,")]
    assert [size for _, size, _ in ours] == ["1472", "4000"]
    assert all(float(rate) > 0 for _, _, rate in ours)
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import make_plots
    finally:
        sys.path.pop(0)
    assert [size for size, _ in make_plots.read_measurements(csv)["ours"]] == [1472, 4000]


def test_packet_size_outside_udp_range_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--udp-packet-sizes", "65000"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "65000 is outside 64..9000 bytes" in proc.stderr


@pytest.mark.timeout(120)
def test_fixed_rate_command_reports_each_implementation() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "udp_fixed_rate.py"), "--rates", "0.5",
         "--passes", "1", "--seconds", "0.1"],
        capture_output=True, text=True, timeout=100, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "9000-byte packets, 1 MiB heaps"
    row = lines[-1].split("|")
    assert row[1].strip() == "0.5"
    assert row[2].strip() == "1/1"  # 16 heaps at 0.5 Gb/s arrive whole
    assert row[3].strip() == "0.00 %"


@pytest.mark.parametrize(("args", "message"), [
    (["--packet", "9001"], "--packet: 9001 is outside 64..9000 bytes"),
    (["--passes", "0"], "--passes: 0 is not at least 1"),
    (["--seconds", "11"], "--seconds: 11 is outside (0, 10]"),
    (["--rates", "5", "-1"], "--rates: -1 Gb/s is outside (0, 100]"),
])
def test_fixed_rate_command_names_bad_values(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "udp_fixed_rate.py"), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr


@pytest.mark.timeout(300)
def test_exit_with_live_streams_each_case_once() -> None:
    """One run of each case of the exit-with-live-streams command (it runs 1000 by hand)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "exit_with_live_streams.py"), "--jobs", "2"],
        capture_output=True, text=True, timeout=280, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert "10 runs of 10 cases" in proc.stdout and "10 passed, 0 failed" in proc.stdout
