"""Shared fixtures of the interop tests (our spead2 against the reference spead2 4.5.1).

The reference runs in its own interpreter, named by ``SPEAD2_REFERENCE_PYTHON``
(``scripts/_env.sh`` ``setup_reference`` builds that venv and exports it);
without it the interop tests are skipped, saying why.
"""

from __future__ import annotations

import subprocess

import interop_run
import pytest

from tests.helpers import reference as helpers_reference


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "interop: runs the reference spead2 as a peer (needs SPEAD2_REFERENCE_PYTHON)",
    )


@pytest.fixture(scope="session")
def reference_python() -> str:
    """The reference's interpreter, checked to import spead2 4.5.1 and numpy."""
    path = helpers_reference.reference_python()
    probe = subprocess.run(
        # -I: neither the cwd (the project's own spead2) nor PYTHONPATH on sys.path.
        [path, "-I", "-c", "import numpy, spead2; print(spead2.__version__, spead2.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"SPEAD2_REFERENCE_PYTHON={path!r} cannot import spead2: {probe.stderr[-500:]}")
    version = probe.stdout.split()[0]
    assert version == "4.5.1", f"reference is spead2 {probe.stdout.strip()}, not 4.5.1"
    return path


@pytest.fixture(scope="session")
def tcpdump() -> str:
    """The tcpdump executable (skips if missing)."""
    return interop_run.find_tcpdump()
