"""What importing a part of the package loads, seen from a fresh interpreter, and what it exports."""

from __future__ import annotations

import subprocess
import sys

import spead2


def test_importing_the_core_loads_no_loop_machinery():
    # Every module of spead2.protocols, in a fresh interpreter.
    code = (
        "import importlib, pkgutil, sys\n"
        "import spead2.protocols\n"
        "for info in pkgutil.iter_modules(spead2.protocols.__path__):\n"
        "    importlib.import_module('spead2.protocols.' + info.name)\n"
        "loaded = sorted(sys.modules)\n"
        "print(len([m for m in loaded if m.startswith('spead2.protocols.')]))\n"
        "print(' '.join(m for m in loaded if m == 'asyncio' or m.startswith(("
        "'asyncio.', 'concurrent.futures', 'spead2._thread_pool', 'spead2._inproc', "
        "'spead2.transports', 'spead2.recv', 'spead2.send', 'spead2.tools'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    n_modules, machinery = (out.stdout.splitlines() + [""])[:2]
    assert int(n_modules) >= 15  # the core was imported: the check below is not vacuous
    assert machinery == ""


def test_every_name_in_all_is_public():
    assert [name for name in spead2.__all__ if name.startswith("_")] == []
    # Still there for code that reads it (the reference has it, privately).
    assert spead2._UNRESERVED_ID == 0x1000
