"""Suite-wide configuration: the three kinds of test, marked by the folder they live in.

- ``tests/core``: bytes in, bytes out (the sans-IO protocol core, codecs, configs); no sockets,
  no loop threads, no subprocesses. ``pytest tests/core`` (or ``-m core``) runs in seconds.
- ``tests/transports``: sockets, event loops and thread pools in this process.
- ``tests/system``: subprocesses (tools, examples, benchmarks, the reference spead2 as a peer),
  the browser, packaging and the documentation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import spead2
from spead2 import _log

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


@pytest.fixture(scope="module")
def pool() -> Iterator[spead2.ThreadPool]:
    """A thread pool shared by the tests of a module, stopped after them."""
    pool = spead2.ThreadPool()
    yield pool
    pool.stop()


@pytest.fixture
def fresh_log_limits() -> Iterator[None]:
    """Log rate limits are process-wide: a test looking for a message gets a fresh burst."""
    _log._limiters.clear()
    yield
    _log._limiters.clear()


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture, fresh_log_limits: None) -> Iterator[pytest.LogCaptureFixture]:
    """INFO logs of the "spead2" logger, from any thread, with fresh rate limits."""
    with caplog.at_level(logging.INFO, logger="spead2"):
        yield caplog
