"""What importing a part of the package loads, seen from a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_core_loads_no_loop_machinery():
    code = (
        "import sys; import spead2.protocols.assembler, spead2.protocols.chunking, "
        "spead2.protocols.descriptors; "
        "print(sorted(m for m in ('asyncio', 'spead2._thread_pool', 'spead2._inproc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
