"""The fuzz targets in CI: replay the committed corpus, then fuzz each target briefly.

Replaying needs nothing but the targets (``tests/fuzz/targets.py``): every
seed, and every crash ever found and copied into ``tests/fuzz/corpus/``, must
pass. The short coverage-guided runs need atheris and take
``SPEAD2_FUZZ_SECONDS`` (default 12) per target, in a subprocess with an RSS
limit; a long run is ``python tests/fuzz/run.py --hours 1``
(docs/robustness.md).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import targets

FUZZ_DIR = Path(__file__).resolve().parents[1] / "fuzz"
CORPUS = FUZZ_DIR / "corpus"
SECONDS = int(os.environ.get("SPEAD2_FUZZ_SECONDS", "12"))


def _corpus(target: str) -> list[Path]:
    return sorted(path for path in (CORPUS / target).iterdir() if path.is_file())


@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_corpus_replays_cleanly(target: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="spead2")
    files = _corpus(target)
    assert len(files) >= 5, f"the {target} corpus is missing; run tests/fuzz/make_corpus.py"
    for path in files:
        targets.TARGETS[target](path.read_bytes())


#: Crashing inputs of bugs not fixed yet (tests/fuzz/regressions/), by file name, with the bug.
#: Once fixed, move the file into corpus/TARGET/ and drop it from here.
KNOWN_BUGS: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
     for name, reason in sorted(KNOWN_BUGS.items())],
)
def test_known_crashes_still_crash(name: str) -> None:
    """Each saved crash of an unfixed bug, replayed with its target's known-bug filter off."""
    data = (FUZZ_DIR / "regressions" / name).read_bytes()
    target = name.split("-")[0]
    targets.TARGETS[target](data)


def test_every_regression_file_is_listed() -> None:
    saved = [p.name for p in (FUZZ_DIR / "regressions").iterdir() if not p.name.startswith(".")]
    assert sorted(saved) == sorted(KNOWN_BUGS)


def test_assembler_corpus_reaches_complete_heaps() -> None:
    """The seeds are real heaps: replayed in order they assemble and decode."""
    from spead2.protocols.heaps import Heap
    from tests.fuzz import _harness

    complete = 0
    for bits, packets in _harness.seed_heaps():
        rig = _harness.make_rig(0x20 | _harness.OUT_OF_ORDER)
        _harness.feed_and_check(rig, packets)
        complete += sum(isinstance(heap, Heap) for heap in rig.delivered)
        assert bits in _harness.FLAVOUR_BITS
    assert complete >= 12


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install atheris) — coverage-guided fuzzing skipped; "
    "the corpus replay above still runs",
)
@pytest.mark.timeout(SECONDS + 90)
@pytest.mark.parametrize("target", sorted(targets.TARGETS))
def test_fuzz_briefly(target: str, tmp_path: Path) -> None:
    scratch = tmp_path / "corpus"
    scratch.mkdir()
    result = subprocess.run(
        [
            sys.executable, str(FUZZ_DIR / "fuzz.py"), target,
            f"-max_total_time={SECONDS}", "-rss_limit_mb=1024", "-timeout=10",
            f"-artifact_prefix={tmp_path}/", str(scratch), str(CORPUS / target),
        ],
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"fuzzing {target} found a problem:\n{output[-4000:]}"
    assert "Done" in output, output[-2000:]
