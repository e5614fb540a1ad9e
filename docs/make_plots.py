"""Draw the performance page's figures: the headline chart and the lossless-rate plot.

The headline chart and table (:func:`make_ratio_plot`, :func:`headline_table`)
come from ``docs/_data/headline.csv``, one workload a row::

    workload,unit,ours,reference,higher_is_better
    decode 1 MiB heaps from memory,GB/s,3.0,19.6,yes

(the medians of the benchmark run the page reports). The chart shows
ours/reference for the workloads where higher is better; the table lists
every row.

The lossless-rate plot (:func:`make_plot`) is drawn as follows.

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("implementation", "packet_size", "lossless_rate_gbps")
HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "_data" / "lossless_rate.csv"
DEFAULT_OUTPUT = HERE / "_generated" / "lossless_rate.svg"
HEADLINE_COLUMNS = ("workload", "unit", "ours", "reference", "higher_is_better")
HEADLINE_DATA = HERE / "_data" / "headline.csv"
HEADLINE_OUTPUT = HERE / "_generated" / "headline.svg"


def _csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV file; ``ValueError`` if a column is missing."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for row in reader:
            yield reader.line_num, row


@dataclass(frozen=True)
class Headline:
    """One workload of the headline table."""

    workload: str
    unit: str
    ours: float
    reference: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        return self.ours / self.reference


def read_headline(path: Path = HEADLINE_DATA) -> list[Headline]:
    """The headline rows, in file order; ``ValueError`` naming the line for bad data."""
    rows = []
    for line, row in _csv_rows(path, HEADLINE_COLUMNS):
        try:
            ours, reference = float(row["ours"]), float(row["reference"])
            if ours <= 0 or reference <= 0:
                raise ValueError("figures must be positive")
            higher = {"yes": True, "no": False}[row["higher_is_better"].strip()]
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{line}: {exc!r}") from None
        rows.append(Headline(row["workload"].strip(), row["unit"].strip(), ours, reference, higher))
    return rows


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def headline_table(path: Path = HEADLINE_DATA) -> str:
    """The headline table, in Markdown."""
    lines = [
        "| workload | unit | this package | C++ spead2 | ours / C++ |",
        "|---|---|--:|--:|--:|",
    ]
    for row in read_headline(path):
        note = "" if row.higher_is_better else " (lower is better)"
        lines.append(
            f"| {row.workload}{note} | {row.unit} | {_figure(row.ours)} | "
            f"{_figure(row.reference)} | {row.ratio:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _save(fig: object, output: Path) -> None:
    """Write ``fig`` as SVG beside ``output`` and rename it, so concurrent builds never see half a file."""
    import matplotlib.pyplot as plt

    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".svg", dir=output.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="svg", metadata={"Date": None})  # type: ignore[attr-defined]
        os.replace(tmp, output)
    finally:
        plt.close(fig)  # type: ignore[arg-type]
        Path(tmp).unlink(missing_ok=True)


def make_ratio_plot(data: Path = HEADLINE_DATA, output: Path = HEADLINE_OUTPUT) -> bool:
    """Draw ours/reference per workload (higher is better ones) as horizontal bars."""
    rows = [row for row in read_headline(data) if row.higher_is_better] if data.exists() else []
    if not rows:
        output.unlink(missing_ok=True)
        return False

    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "spead2-docs"
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.2), layout="constrained")
    labels = [row.workload for row in rows][::-1]
    ratios = [row.ratio for row in rows][::-1]
    colours = ["tab:green" if r >= 1 else "tab:orange" for r in ratios]
    # Bars grow from 1 (as fast as the reference) towards each ratio.
    ax.barh(labels, [ratio - 1 for ratio in ratios], left=1, color=colours)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(min(0.1, min(ratios) / 1.5), max(10, max(ratios) * 1.5))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    for y, ratio in enumerate(ratios):
        ax.annotate(f"{ratio:.2f}", (ratio, y), xytext=(4 if ratio >= 1 else -4, 0),
                    textcoords="offset points", va="center", fontsize=8,
                    ha="left" if ratio >= 1 else "right")
    ax.set_xlabel("this package / C++ spead2 (log scale): right of 1 is faster")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _save(fig, output)
    return True


def read_measurements(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Measurements by implementation, each sorted by packet size.

    Raises ``ValueError`` naming the file and line for a missing column or a
    value that is not a number, so a bad data file fails the docs build.
    """
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line, row in _csv_rows(path, COLUMNS):
        try:
            size = int(row["packet_size"])
            rate = float(row["lossless_rate_gbps"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{line}: {exc}") from None
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
    _save(fig, output)
    return True


if __name__ == "__main__":
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUTPUT
    print(output if make_plot(data, output) else f"{data}: no measurements yet, nothing drawn")
