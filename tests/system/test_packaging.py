"""How the package installs: dependencies and their markers, the licence, metadata, versions.

The two install configurations are both exercised: the ordinary one (this
environment, with the optional ``cypcap``), and one where ``cypcap`` cannot
be imported (a subprocess that blocks it), as on a platform without a cypcap
wheel where the ``pcap`` extra was not installed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

import spead2
import spead2.recv
import spead2.send
from tests.helpers.tools import REPO, env

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
DEPENDENCIES = {Requirement(text).name: Requirement(text) for text in PROJECT["dependencies"]}

#: The distribution names of the runtime dependencies, and the module each provides.
IMPORT_NAMES = {"numpy": "numpy", "uvloop": "uvloop", "streamview": "streamview",
                "rich": "rich", "cypcap": "cypcap"}


def platform(system: str, machine: str) -> dict[str, str]:
    """A marker environment for CPython 3.13 on ``system``/``machine``."""
    return {"sys_platform": system, "platform_machine": machine, "python_version": "3.13",
            "platform_system": {"linux": "Linux", "darwin": "Darwin", "win32": "Windows"}[system],
            "os_name": "nt" if system == "win32" else "posix", "implementation_name": "cpython"}


@pytest.mark.parametrize(
    ("system", "machine", "installed"),
    [
        # Where cypcap publishes wheels, it comes with the package...
        ("linux", "x86_64", True),
        ("darwin", "arm64", True),
        ("darwin", "x86_64", True),
        ("win32", "AMD64", True),
        # ...elsewhere it would need a compiler and libpcap, so it is left to the extra.
        ("linux", "aarch64", False),
        ("linux", "ppc64le", False),
        ("win32", "ARM64", False),
    ],
)
def test_cypcap_installs_itself_only_where_a_wheel_exists(
    system: str, machine: str, installed: bool
) -> None:
    marker = DEPENDENCIES["cypcap"].marker
    assert marker is not None
    assert marker.evaluate(platform(system, machine)) is installed
    # Everywhere, `pip install "aiospead2[pcap]"` asks for it.
    (extra,) = (Requirement(text) for text in PROJECT["optional-dependencies"]["pcap"])
    assert extra.name == "cypcap" and extra.marker is None


def test_uvloop_is_left_out_where_it_does_not_exist() -> None:
    marker = DEPENDENCIES["uvloop"].marker
    assert marker == Marker("sys_platform != 'win32'")


def _imported_modules() -> set[str]:
    """Top-level modules the package's code imports (anywhere, lazily or not)."""
    found = set()
    for path in (REPO / "spead2").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_runtime_dependency_is_used() -> None:
    """No dead dependency: each one the package declares is imported by its code."""
    assert set(DEPENDENCIES) == set(IMPORT_NAMES)
    imported = _imported_modules()
    unused = {name for name, module in IMPORT_NAMES.items() if module not in imported}
    assert not unused


def test_supported_versions_follow_spec_0() -> None:
    assert PROJECT["requires-python"] == ">=3.13"
    assert str(DEPENDENCIES["numpy"].specifier) == ">=2.0"
    readme = (REPO / "README.md").read_text()
    assert "SPEC 0" in readme and "Python ≥ 3.13" in readme and "numpy ≥ 2" in readme


def test_licence_file_matches_the_declared_licence() -> None:
    assert PROJECT["license"] == "LGPL-3.0-or-later"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    # The LGPL v3 supplements the GPL v3: both texts, in full.
    lgpl = text.index("GNU LESSER GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007")
    gpl = text.index("GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007")
    assert lgpl < gpl
    assert "0. Additional Definitions." in text and "END OF TERMS AND CONDITIONS" in text
    assert "either version 3" in text and "or (at your option) any later version" in text


def test_metadata_urls_and_classifiers() -> None:
    assert PROJECT["urls"]
    classifiers = PROJECT["classifiers"]
    assert "Programming Language :: Python :: 3.13" in classifiers
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert "Topic :: Scientific/Engineering :: Astronomy" in classifiers


def test_installed_metadata_matches_pyproject() -> None:
    try:
        metadata = importlib.metadata.metadata("aiospead2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("aiospead2 is not installed (tests run from the source tree)")
    assert metadata["Version"] == PROJECT["version"]
    assert metadata["License-Expression"] == "LGPL-3.0-or-later"
    assert set(metadata.get_all("Classifier") or []) == set(PROJECT["classifiers"])
    assert metadata.get_all("Project-URL")
    requires = metadata.get_all("Requires-Dist") or []
    assert not any(re.match(r"aiofiles\b", req) for req in requires)
    assert any(req.startswith("cypcap") and 'extra == "pcap"' in req for req in requires)


def test_versions_and_implementation() -> None:
    assert spead2.__version__ == "4.5.1"  # the spead2 API implemented, as before
    assert spead2.__implementation__ == "aiospead2"
    assert spead2.__implementation_version__ == PROJECT["version"]
    assert getattr(spead2, "__implementation__", "spead2") == "aiospead2"


WITHOUT_CYPCAP = textwrap.dedent(
    """
    import sys
    sys.modules["cypcap"] = None  # as if it were not installed: any import of it fails
    import asyncio, socket
    import numpy as np
    import spead2, spead2.recv, spead2.send
    from spead2.tools import capture

    # Sending and receiving work as usual.
    pool = spead2.ThreadPool()
    sender = spead2.send.BytesStream(pool)
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (4,), dtype=np.uint32, value=np.arange(4, dtype=np.uint32))
    sender.send_heap(group.get_heap())
    sender.send_heap(group.get_end())
    stream = spead2.recv.Stream(pool)
    stream.add_buffer_reader(sender.getvalue())
    items = spead2.ItemGroup()
    for heap in stream:
        print("received", list(items.update(heap)["x"].value))

    # spead2_capture writes pcap files itself: it needs no libpcap.
    out = sys.argv[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = capture.parse_args(["-c", "1", out, f"127.0.0.1:{port}"], "spead2_capture")
    args.prog = "spead2_capture"

    async def run():
        task = asyncio.create_task(capture.async_main(args))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            while not task.done():
                tx.sendto(b"hello", ("127.0.0.1", port))
                await asyncio.sleep(0.05)  # sent again until the capture has its one packet
        return await task

    print("capture status", asyncio.run(run()))

    # Reading a capture file says how to get pcap support.
    try:
        spead2.recv.Stream(pool).add_udp_pcap_file_reader(out)
    except ModuleNotFoundError as exc:
        print("pcap:", exc.name, "|", exc)
    """
)


def test_without_cypcap_everything_but_reading_pcap_files_works(tmp_path: Path) -> None:
    out = tmp_path / "capture.pcap"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_CYPCAP, str(out)], capture_output=True, text=True,
        env=env(), cwd=REPO, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "received [np.uint32(0), np.uint32(1), np.uint32(2), np.uint32(3)]"
    assert "capture status 0" in lines
    assert out.stat().st_size > 24 + 16 + 5  # file header, a record header, the datagram
    pcap_line = lines[-1]
    assert pcap_line.startswith("pcap: cypcap | reading pcap files needs the optional cypcap")
    assert "pip install 'aiospead2[pcap]'" in pcap_line


def test_with_cypcap_a_capture_file_reads_back(tmp_path: Path) -> None:
    """The ordinary configuration: where the marker installs cypcap, pcap files read."""
    marker = DEPENDENCIES["cypcap"].marker
    assert marker is not None
    if not marker.evaluate():
        pytest.skip("no cypcap wheel for this platform: pcap support is the optional extra")
    import cypcap  # noqa: F401  (installed with the package here: a failure is a packaging bug)

    from tests.helpers.pcap_files import udp_frame, write_pcap

    path = tmp_path / "one.pcap"
    sender = spead2.send.BytesStream(spead2.ThreadPool())
    sender.send_heap(spead2.send.ItemGroup().get_end())
    write_pcap(path, [udp_frame(sender.getvalue())])
    stream = spead2.recv.Stream(spead2.ThreadPool())
    stream.add_udp_pcap_file_reader(str(path))
    assert list(stream) == []  # the stop heap ended the stream
    assert stream.stats["packets"] == 1
