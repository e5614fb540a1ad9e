"""Every example in ``examples/`` runs on its own and prints what it should.

Each runs as a subprocess over loopback (or in-process queues) with free
ports, bounded in heaps and time. The web service has its own tests
(``test_web_example.py``).
"""

from __future__ import annotations

import re
import sys

from tests.helpers.tools import (
    REPO,
    consecutive_ports,
    finish,
    free_port,
    run,
    start,
    stop_process,
    wait_bound,
)

EXAMPLES = REPO / "examples"


def example(name: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), *args]


def run_example(name: str, *args: str) -> str:
    result = run(example(name, *args))
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_recv_blocking() -> None:
    out = run_example("recv_blocking.py", "--port", str(free_port()), "--heaps", "5")
    lines = out.splitlines()
    assert "heap 1: counter = 0" in lines
    assert "heap 1: row = [0 0 0 0]" in lines
    assert "heap 5: counter = 4" in lines
    assert "heap 5: row = [ 0  4  8 12]" in lines
    assert lines[-1] == "received 5 heaps, 6 packets, 0 incomplete"


def test_send_blocking() -> None:
    out = run_example("send_blocking.py", "--port", str(free_port()), "--heaps", "4")
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[:4]] == [f"sent heap {i}" for i in range(4)]
    assert all(re.fullmatch(r"sent heap \d: \d+ bytes", line) for line in lines[:4])
    assert lines[4] == "sent end of stream"
    assert lines[5] == "receiver got 4 heaps, timestamps [0, 1024, 2048, 3072]"


def test_recv_asyncio() -> None:
    out = run_example("recv_asyncio.py", "--port", str(free_port()), "--heaps", "3")
    lines = out.splitlines()
    assert lines[0] == "heap 1: label = heap number 0"
    assert lines[1:3] == ["heap 1: matrix = [[0 0]", " [0 0]]"]
    assert "heap 3: label = heap number 2" in lines
    assert lines[-1] == "received 3 heaps in 4 packets"


def test_send_asyncio() -> None:
    out = run_example("send_asyncio.py", "--port", str(free_port()), "--heaps", "8")
    lines = out.splitlines()
    assert re.fullmatch(r"sent 8 heaps and the end of stream: \d+ bytes", lines[0])
    assert lines[1] == (
        "receiver got 8 heaps, timestamps [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000]"
    )


def test_memory_pool() -> None:
    out = run_example("memory_pool.py", "--heaps", "4", "--heap-size", "65536")
    lines = out.splitlines()
    assert lines[:4] == [
        f"heap {i + 1}: 65536 bytes, all equal to {i}: True" for i in range(4)
    ]
    assert lines[4].startswith("received 4 heaps of 65536 bytes (pool: ")


def test_substreams() -> None:
    port = consecutive_ports(2)
    out = run_example("substreams.py", "--port", str(port), "--groups", "3")
    lines = out.splitlines()
    assert f"port {port}: heap 1 for beam 0, samples[0] = 0" in lines
    assert f"port {port + 1}: heap 6 for beam 1, samples[0] = 2" in lines
    assert lines[-2:] == [
        f"port {port} received heaps [1, 3, 5]",
        f"port {port + 1} received heaps [2, 4, 6]",
    ]


def test_send_example_to_receive_example() -> None:
    """The halves of two examples talk to each other when their built-in peers are off."""
    port = free_port()
    receiver = start(example("recv_asyncio.py", "--no-sender", "--port", str(port)))
    try:
        wait_bound(receiver, port)
        out = run_example("send_blocking.py", "--no-receiver", "--port", str(port), "--heaps", "2")
        assert out.splitlines()[-1] == "sent end of stream"
        received, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert receiver.returncode == 0, err
    lines = received.splitlines()
    assert "heap 1: timestamp = 0" in lines
    assert "heap 2: timestamp = 1024" in lines
    assert lines[-1].startswith("received 2 heaps in ")
