"""Long, resumable fuzzing run over every target: the one command for it.

Usage::

    python tests/fuzz/run.py --hours 1                   # one lane, targets in turn
    nice -n 19 python tests/fuzz/run.py --until 15:45 --jobs 2
    python tests/fuzz/run.py --minutes 4 --targets packet,assembler
    python tests/fuzz/run.py --totals                    # print the tally and exit

Needs atheris (``pip install atheris``). The time is cut into slices (default
10 minutes); each slice fuzzes the target that has had the least fuzzing time
so far (over every run recorded in the tally), under ``fuzz.py`` with a 2 GiB
RSS limit and a 10 s per-input timeout (a hang is a finding), starting from
the committed corpus ``tests/fuzz/corpus/TARGET``. After each slice:

- the inputs it found are merged into ``tests/fuzz/corpus/TARGET`` with
  libFuzzer's ``-merge=1`` (only those that add coverage), so the next run
  resumes from everything found so far;
- a line is appended to ``tests/fuzz/tally.tsv``: when, which commit, target,
  seconds, executions and outcome. ``--totals`` adds it up.

Commit the corpus and the tally after a run. Crashing inputs are written to
``tests/fuzz/crashes/``; a fixed one goes into ``corpus/TARGET`` and the test
suite replays it for ever after (``tests/system/test_fuzz_smoke.py``). Exits
non-zero if any slice found a crash, a hang or a memory blow-up.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ("packet", "assembler", "descriptors", "itemgroup", "tcp")
#: Inputs holding packet sequences need room to grow.
MAX_LEN = {
    "packet": 9200, "assembler": 32768, "descriptors": 9200, "itemgroup": 32768, "tcp": 32768,
}
TALLY_HEADER = "finished_utc\tcommit\ttarget\tseconds\texecutions\toutcome\n"
#: Seconds kept back at the end of each slice for merging its inputs into the corpus.
MERGE_ALLOWANCE = 60


def read_tally(path: str) -> list[dict[str, str]]:
    """The tally's rows, as dicts keyed by the header's columns ('#' lines are comments)."""
    if not os.path.exists(path):
        return []
    with open(path) as tally:
        lines = [line.rstrip("\n") for line in tally if line.strip() and not line.startswith("#")]
    if not lines:
        return []
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[1:]]


def totals(rows: list[dict[str, str]]) -> dict[str, tuple[float, int, int]]:
    """Per target: (seconds, executions, slices that were not clean)."""
    result: dict[str, tuple[float, int, int]] = {}
    for row in rows:
        seconds, executions, bad = result.get(row["target"], (0.0, 0, 0))
        result[row["target"]] = (
            seconds + float(row["seconds"]),
            executions + int(row["executions"]),
            bad + (row["outcome"] != "ok"),
        )
    return result


def print_totals(path: str) -> None:
    """Print the per-target and overall totals of the tally at ``path``."""
    sums = totals(read_tally(path))
    print(f"{'target':<12} {'hours':>7} {'executions':>14} {'not clean':>9}")
    for target, (seconds, executions, bad) in sorted(sums.items()):
        print(f"{target:<12} {seconds / 3600:7.2f} {executions:14,} {bad:9}")
    seconds = sum(s for s, _, _ in sums.values())
    executions = sum(e for _, e, _ in sums.values())
    bad = sum(b for _, _, b in sums.values())
    print(f"{'total':<12} {seconds / 3600:7.2f} {executions:14,} {bad:9}")


def _commit() -> str:
    """The commit being fuzzed: $SPEAD2_FUZZ_COMMIT (for a snapshot) or this checkout's HEAD."""
    if os.environ.get("SPEAD2_FUZZ_COMMIT"):
        return os.environ["SPEAD2_FUZZ_COMMIT"]
    result = subprocess.run(
        ["git", "-C", _HERE, "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )
    return result.stdout.strip() or "unknown"


def _executions(log_text: str) -> int:
    match = re.search(r"stat::number_of_executed_units:\s*(\d+)", log_text) or re.search(
        r"Done (\d+) runs", log_text
    )
    if match:
        return int(match.group(1))
    # A crash may end the log before the final statistics: take the last progress line.
    progress = re.findall(r"^#(\d+)\s", log_text, flags=re.MULTILINE)
    return int(progress[-1]) if progress else 0


def _outcome(code: int, log_text: str) -> str:
    if code == 0:
        return "ok"
    for marker, outcome in (
        ("ERROR: libFuzzer: timeout", "hang"),
        ("out-of-memory", "oom"),
        ("Uncaught Python exception", "crash"),
    ):
        if marker in log_text:
            return outcome
    return f"exit-{code}"


class Runner:
    """Hands out slices to the lanes and records each in the tally."""

    def __init__(self, args: argparse.Namespace, targets: list[str], deadline: float) -> None:
        self.args = args
        self.targets = targets
        self.deadline = deadline
        self.lock = threading.Lock()
        self.busy: set[str] = set()
        self.failed: list[str] = []
        sums = totals(read_tally(args.tally))
        self.seconds = {t: sums.get(t, (0.0, 0, 0))[0] for t in targets}

    def next_target(self) -> str | None:
        """The idle target with the least fuzzing time so far, or None if none is idle."""
        with self.lock:
            idle = [t for t in self.targets if t not in self.busy]
            if not idle:
                return None
            target = min(idle, key=lambda t: (self.seconds[t], self.targets.index(t)))
            self.busy.add(target)
            return target

    def lane(self, number: int) -> None:
        """Run slices until the deadline."""
        while True:
            remaining = self.deadline - time.time()
            if remaining < MERGE_ALLOWANCE + 60:
                return
            target = self.next_target()
            if target is None:
                return
            try:
                seconds = int(min(self.args.slice_minutes * 60, remaining - MERGE_ALLOWANCE))
                self.slice(target, seconds, number)
            finally:
                with self.lock:
                    self.busy.discard(target)

    def slice(self, target: str, seconds: int, lane: int) -> None:
        """Fuzz ``target`` for ``seconds``, merge what was found, record it."""
        corpus = os.path.join(self.args.corpus, target)
        crashes = self.args.crashes
        os.makedirs(corpus, exist_ok=True)
        os.makedirs(crashes, exist_ok=True)
        os.makedirs(self.args.work, exist_ok=True)
        # Read per slice: an editable install follows the checkout as commits arrive.
        commit = _commit()
        fuzz_py = os.path.join(_HERE, "fuzz.py")
        scratch = tempfile.mkdtemp(prefix=f"{target}-", dir=self.args.work)
        log_path = os.path.join(self.args.work, f"{target}.log")
        print(f"[lane {lane}] fuzzing {target} for {seconds} s", flush=True)
        command = [
            sys.executable, fuzz_py, target,
            f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-timeout=10",
            f"-max_len={MAX_LEN[target]}", "-print_final_stats=1",
            f"-artifact_prefix={os.path.join(crashes, target)}-",
            scratch, corpus,
        ]
        started = time.monotonic()
        with open(log_path, "w") as log:
            code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        elapsed = time.monotonic() - started
        with open(log_path) as log:
            text = log.read()
        executions = _executions(text)
        outcome = _outcome(code, text)
        # Merge: keep only the new inputs that add coverage to the committed corpus.
        merge_log = os.path.join(self.args.work, f"{target}.merge.log")
        with open(merge_log, "w") as log:
            merged = subprocess.run(
                [sys.executable, fuzz_py, target, "-merge=1", f"-max_len={MAX_LEN[target]}",
                 "-rss_limit_mb=2048", "-timeout=10", corpus, scratch],
                stdout=log, stderr=subprocess.STDOUT, check=False,
            )
        if merged.returncode != 0:
            print(f"[lane {lane}] {target}: merge failed; see {merge_log}", flush=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        finished = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.seconds[target] += elapsed
            new = not os.path.exists(self.args.tally)
            with open(self.args.tally, "a") as tally:
                if new:
                    tally.write(TALLY_HEADER)
                tally.write(
                    f"{finished}\t{commit}\t{target}\t{elapsed:.0f}\t{executions}\t{outcome}\n"
                )
            if outcome != "ok":
                self.failed.append(target)
        print(f"[lane {lane}] {target}: {executions} executions in {elapsed:.0f} s: {outcome}",
              flush=True)


def main() -> None:
    """Parse the command line and fuzz the targets in slices until the time is up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=None, help="total wall time")
    parser.add_argument("--minutes", type=float, default=None, help="total wall time")
    parser.add_argument("--until", default=None, help="stop by this UTC time, HH:MM")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once (default 1)")
    parser.add_argument("--slice-minutes", type=float, default=10.0, help="length of one slice")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--corpus", default=os.path.join(_HERE, "corpus"),
                        help="corpus root, read and merged into (default: the committed one)")
    parser.add_argument("--tally", default=os.path.join(_HERE, "tally.tsv"))
    parser.add_argument("--crashes", default=os.path.join(_HERE, "crashes"))
    parser.add_argument(
        "--work", default=os.path.join(os.path.expanduser("~"), ".cache", "aiospead2-fuzz"),
        help="scratch directory for each slice's new inputs and logs",
    )
    parser.add_argument("--totals", action="store_true", help="print the tally's totals and exit")
    args = parser.parse_args()
    if args.totals:
        print_totals(args.tally)
        return
    targets = [t for t in args.targets.split(",") if t]
    for target in targets:
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}")
    if args.until:
        now = datetime.datetime.now(datetime.UTC)
        hour, minute = (int(part) for part in args.until.split(":"))
        end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if end <= now:
            parser.error(f"--until {args.until} is not later today (UTC)")
        deadline = end.timestamp()
    else:
        total = 3600.0 * (args.hours or 0) + 60.0 * (args.minutes or 0) or 3600.0
        deadline = time.time() + total
    runner = Runner(args, targets, deadline)
    lanes = [threading.Thread(target=runner.lane, args=(n,)) for n in range(max(1, args.jobs))]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    print_totals(args.tally)
    if runner.failed:
        print(f"FINDINGS in {', '.join(sorted(set(runner.failed)))}: see {args.crashes}")
    sys.exit(1 if runner.failed else 0)


if __name__ == "__main__":
    main()
