"""Draw the performance page's plot: lossless rate against packet size, per implementation.

The data live in ``docs/_data/lossless_rate.csv``, one measurement a row::

    implementation,packet_size,lossless_rate_gbps
    aiospead2,1472,1.23
    spead2 4.5.1 (C++),1472,4.56

``implementation`` names the line, ``packet_size`` is the packet size in
bytes (``spead2_bench --packet``) and ``lossless_rate_gbps`` the highest rate
received without loss, in Gb/s (``spead2_bench``'s "Sustainable rate").
Other columns are ignored. A file with only the header means "no
measurements yet": no plot is drawn and the page says figures are pending.

The Sphinx build calls :func:`make_plot`; run this file by hand to look at
the plot without building the site::

    python docs/make_plots.py [CSV] [OUTPUT.svg]
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

COLUMNS = ("implementation", "packet_size", "lossless_rate_gbps")
HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "_data" / "lossless_rate.csv"
DEFAULT_OUTPUT = HERE / "_generated" / "lossless_rate.svg"


def read_measurements(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Measurements by implementation, each sorted by packet size.

    Raises ``ValueError`` naming the file and line for a missing column or a
    value that is not a number, so a bad data file fails the docs build.
    """
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for row in reader:
            try:
                size = int(row["packet_size"])
                rate = float(row["lossless_rate_gbps"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{reader.line_num}: {exc}") from None
            series[row["implementation"].strip()].append((size, rate))
    return {name: sorted(points) for name, points in series.items()}


def make_plot(data: Path = DEFAULT_DATA, output: Path = DEFAULT_OUTPUT) -> bool:
    """Draw ``output`` (SVG) from ``data``; ``False``, and no file, when there are no measurements."""
    series = read_measurements(data) if data.exists() else {}
    if not series:
        output.unlink(missing_ok=True)
        return False

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Identical input gives an identical file (no date, fixed element ids).
    plt.rcParams["svg.hashsalt"] = "spead2-docs"
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for name, points in sorted(series.items()):
        sizes = [p[0] for p in points]
        rates = [p[1] for p in points]
        ax.plot(sizes, rates, marker="o", label=name)
    ax.set_xscale("log", base=2)
    # Label the packet sizes measured, not powers of two.
    sizes = sorted({size for points in series.values() for size, _ in points})
    ax.set_xticks(sizes, [str(size) for size in sizes])
    ax.minorticks_off()
    ax.set_xlabel("packet size (bytes)")
    ax.set_ylabel("lossless rate (Gb/s)")
    ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so concurrent builds never see half a file.
    fd, tmp = tempfile.mkstemp(suffix=".svg", dir=output.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="svg", metadata={"Date": None})
        os.replace(tmp, output)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return True


if __name__ == "__main__":
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUTPUT
    print(output if make_plot(data, output) else f"{data}: no measurements yet, nothing drawn")
