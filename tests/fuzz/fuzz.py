"""Run one fuzz target under atheris (coverage-guided, libFuzzer).

Usage::

    python tests/fuzz/fuzz.py TARGET [libFuzzer options] [CORPUS_DIR ...]

``TARGET`` is one of ``packet``, ``assembler``, ``descriptors``,
``itemgroup``, ``tcp`` (see ``targets.py``). libFuzzer writes new interesting inputs
into the *first* corpus directory, so put a scratch directory first and the
committed seeds (``tests/fuzz/corpus/TARGET``) after it, e.g.::

    python tests/fuzz/fuzz.py assembler -max_total_time=60 -rss_limit_mb=2048 \\
        /tmp/scratch tests/fuzz/corpus/assembler

Only the ``spead2`` package is instrumented for coverage.
For long runs over every target use ``run.py``.
"""

from __future__ import annotations

import os
import sys

# The repo root, so that ``spead2`` and ``tests.fuzz`` import from this checkout.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import atheris  # noqa: E402


def main() -> None:
    """Instrument spead2, pick the target named by the first argument and fuzz it."""
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(f"usage: {sys.argv[0]} TARGET [libFuzzer options] [corpus dirs]")
    name = sys.argv.pop(1)
    # Only the library: instrumenting the harness too (its numpy and bytes comparisons)
    # made atheris's memory grow steadily, and its coverage is not what is being explored.
    with atheris.instrument_imports(include=["spead2"]):
        from tests.fuzz import targets
    try:
        target = targets.TARGETS[name]
    except KeyError:
        sys.exit(f"unknown target {name!r}; choose from {', '.join(targets.TARGETS)}")
    # Hostile-input paths log (rate-limited) at INFO/WARNING; keep the fuzzer's output readable.
    import logging

    logging.getLogger("spead2").setLevel(logging.CRITICAL)
    # libFuzzer re-runs its own command line through the shell in -merge=1 mode (run.py merges
    # each run's new inputs into the committed corpus): make argv[0] a command that re-selects
    # the target.
    import shlex

    command = shlex.join([sys.executable, os.path.abspath(__file__), name])
    atheris.Setup([command, *sys.argv[1:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
