"""Long fuzzing run over every target: the one command for it.

Usage::

    python tests/fuzz/run.py --hours 1            # 12 minutes per target
    python tests/fuzz/run.py --minutes 4 --targets packet,assembler

Needs atheris (``pip install atheris``). Each target runs in turn under
``fuzz.py`` for its share of the time, with a 2 GiB RSS limit and a 10 s
per-input timeout (a hang is a finding). New interesting inputs accumulate in
a work directory (default ``~/.cache/aiospead2-fuzz/TARGET``, kept between
runs so fuzzing resumes where it stopped); the committed seeds in
``tests/fuzz/corpus/TARGET`` are read, never written. Crashing inputs are
written to ``tests/fuzz/crashes/`` — copy one into ``corpus/TARGET`` and the
test suite replays it for ever after (``tests/test_fuzz_smoke.py``).
Exits non-zero if any target found a crash.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ("packet", "assembler", "descriptors", "itemgroup", "tcp")
#: Inputs holding packet sequences need room to grow.
MAX_LEN = {
    "packet": 9200, "assembler": 32768, "descriptors": 9200, "itemgroup": 32768, "tcp": 32768,
}


def run_target(target: str, seconds: int, work: str, crashes: str) -> tuple[int, int]:
    """Fuzz ``target`` for ``seconds``; return ``(executions, exit code)``."""
    work_dir = os.path.join(work, target)
    os.makedirs(work_dir, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    command = [
        sys.executable, os.path.join(_HERE, "fuzz.py"), target,
        f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-timeout=10",
        f"-max_len={MAX_LEN[target]}", "-print_final_stats=1",
        f"-artifact_prefix={os.path.join(crashes, target)}-",
        work_dir, os.path.join(_HERE, "corpus", target),
    ]
    log_path = os.path.join(work, f"{target}.log")
    with open(log_path, "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    with open(log_path) as log:
        text = log.read()
    match = re.search(r"stat::number_of_executed_units:\s*(\d+)", text) or re.search(
        r"Done (\d+) runs", text
    )
    executions = int(match.group(1)) if match else 0
    if result.returncode != 0:
        print(f"  {target}: exit code {result.returncode}; see {log_path}", flush=True)
    return executions, result.returncode


def main() -> None:
    """Parse the command line and fuzz each target for its share of the time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=None, help="total time (all targets)")
    parser.add_argument("--minutes", type=float, default=None, help="total time (all targets)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument(
        "--work",
        default=os.path.join(os.path.expanduser("~"), ".cache", "aiospead2-fuzz"),
        help="where the growing corpus and logs are kept",
    )
    parser.add_argument("--crashes", default=os.path.join(_HERE, "crashes"))
    args = parser.parse_args()
    total = 3600.0 * (args.hours or 0) + 60.0 * (args.minutes or 0) or 3600.0
    targets = [t for t in args.targets.split(",") if t]
    for target in targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}")
    share = max(1, int(total / len(targets)))
    failed = []
    start = time.monotonic()
    for target in targets:
        print(f"fuzzing {target} for {share} s ...", flush=True)
        executions, code = run_target(target, share, args.work, args.crashes)
        print(f"  {target}: {executions} executions", flush=True)
        if code != 0:
            failed.append(target)
    elapsed = (time.monotonic() - start) / 3600
    print(f"done: {elapsed:.2f} h; " + (f"FINDINGS in {', '.join(failed)}" if failed else "no findings"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
