"""The overloads of the reference's overloaded methods, as a type checker sees them.

mypy runs on a small snippet of user code: the reference's call forms pass,
and a port given as a string is an error an editor shows before it runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SNIPPET = '''\
import socket

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
import spead2.send.asyncio

pool = spead2.ThreadPool()
stream = spead2.recv.Stream(pool)
stream.add_udp_reader(7148)
stream.add_udp_reader(7148, 9200, 0, "127.0.0.1")
stream.add_udp_reader(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 9000)
stream.add_udp_reader("239.1.2.3", 7148, 9200, 0, "10.0.0.1")
stream.add_udp_reader("ff14::1", 7148, interface_index=2)
stream.add_udp_reader("ff14::1", 7148, 9200, 0, 2)
stream.add_tcp_reader(7148, bind_hostname="127.0.0.1")
stream.add_tcp_reader(socket.socket(), max_size=9000)
spead2.recv.asyncio.Stream(pool).add_udp_reader(7148)
spead2.send.UdpStream(pool, [("127.0.0.1", 7148)])
spead2.send.UdpStream(pool, [("239.1.2.3", 7148)], ttl=4)
spead2.send.asyncio.UdpStream(pool, [("127.0.0.1", 7148)], spead2.send.StreamConfig(), 0, "")
stream.add_udp_reader("7148")  # ERROR
stream.add_tcp_reader("7148")  # ERROR
spead2.recv.asyncio.Stream(pool).add_udp_reader(port="7148")  # ERROR
stream.add_udp_reader(7148, bind_hostname=0)  # ERROR
spead2.send.UdpStream(pool, [("127.0.0.1", "7148")])  # ERROR
'''


@pytest.mark.timeout(300)
def test_mypy_catches_a_string_port(tmp_path: Path) -> None:
    snippet = tmp_path / "user_code.py"
    snippet.write_text(SNIPPET)
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental",
            "--hide-error-context", "--no-error-summary", "--cache-dir", str(tmp_path / "cache"),
            str(snippet),
        ],
        cwd=tmp_path, env={"MYPYPATH": str(REPO), "PATH": ""}, capture_output=True, text=True,
        timeout=280,
    )
    error_lines = sorted(
        {int(m.group(1)) for m in re.finditer(r"user_code\.py:(\d+): error", result.stdout)}
    )
    expected = [i for i, line in enumerate(SNIPPET.splitlines(), 1) if line.endswith("# ERROR")]
    assert error_lines == expected, result.stdout + result.stderr
    assert "No overload variant of \"add_udp_reader\"" in result.stdout
