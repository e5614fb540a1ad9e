"""The README's demo command: a sender and a receiver over loopback UDP."""

import re
import subprocess
import sys

from tests.helpers.tools import REPO, env


def test_demo_exchanges_every_heap_over_udp():
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py"), "--heaps", "25"],
        capture_output=True, text=True, timeout=60, env=env(), cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"receiving on udp://127\.0\.0\.1:\d+", out)
    heap_lines = re.findall(r"^heap +\d+: timestamp=(\d+) label='heap (\d+)'", out, re.M)
    assert [(int(t), int(i)) for t, i in heap_lines] == [(1_000_000 + 256 * i, i) for i in range(25)]
    assert "received 25/25 data heaps" in out
    assert re.search(r"statistics: heaps=25, .*invalid_packets=0", out)
