"""The reference spead2 4.5.1 as a test peer: its interpreter, named by ``SPEAD2_REFERENCE_PYTHON``
(``scripts/_env.sh`` ``setup_reference`` builds that venv and exports it). Never imported here."""

from __future__ import annotations

import os

import pytest


def reference_python() -> str:
    """The reference's interpreter; without one the calling test is skipped, saying why."""
    path = os.environ.get("SPEAD2_REFERENCE_PYTHON")
    if not path:
        pytest.skip("SPEAD2_REFERENCE_PYTHON is not set (path of a Python with spead2 4.5.1)")
    if not os.access(path, os.X_OK):
        pytest.skip(f"SPEAD2_REFERENCE_PYTHON={path!r} is not an executable")
    return path
