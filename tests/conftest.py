"""Suite-wide configuration: the three kinds of test, marked by the folder they live in.

- ``tests/core``: bytes in, bytes out (the sans-IO protocol core, codecs, configs); no sockets,
  no loop threads, no subprocesses. ``pytest tests/core`` (or ``-m core``) runs in seconds.
- ``tests/transports``: sockets, event loops and thread pools in this process.
- ``tests/system``: subprocesses (tools, examples, benchmarks, the reference spead2 as a peer),
  the browser, packaging and the documentation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
KINDS = {
    "core": "bytes-only tests of the sans-IO core (tests/core; runs in seconds)",
    "transports": "tests with sockets, event loops or thread pools (tests/transports)",
    "system": "tests with subprocesses, the browser or the reference peer (tests/system)",
}


def pytest_configure(config: pytest.Config) -> None:
    for kind, meaning in KINDS.items():
        config.addinivalue_line("markers", f"{kind}: {meaning}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            kind = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # collected from outside tests/ (e.g. a doctest elsewhere)
            continue
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
