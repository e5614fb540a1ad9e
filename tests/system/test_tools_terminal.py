"""The tools as a person at a terminal meets them: live progress, Ctrl-C, ``--help``, errors.

Progress is checked under a pseudo-terminal (the tools show it only there);
Ctrl-C is a real SIGINT to a running tool. Every run is bounded in heaps,
datagrams and time.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tools import (
    TerminalProcess,
    env,
    free_port,
    run,
    start,
    stop_process,
    tool_command,
    wait_bound,
)

SENT_RE = re.compile(r"^Sent (\d+) bytes in \d+\.\d{6}s, \d+\.\d{6} Gb/s$", re.M)
THROUGHPUT = r"bytes: [\d.]+ [kMGT]?B  rate: \d+\.\d{3} Gb/s  elapsed: [\d.:]+( s)?"


def plain(text: str) -> str:
    """Terminal output without its control sequences and carriage returns."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


def udp_sink() -> socket.socket:
    """A bound UDP socket on 127.0.0.1 for a sender to aim at (never read unless asked)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


# -- progress on a terminal -----------------------------------------------------------


def test_send_progress_on_a_terminal() -> None:
    with udp_sink() as sink:
        port = sink.getsockname()[1]
        # 20 heaps of 10 kB at 2 Mb/s: about 0.8 s, several refreshes.
        sender = TerminalProcess(tool_command(
            "send", "--heaps", "20", "--heap-size", "10000", "--rate", "0.002",
            f"127.0.0.1:{port}",
        ))
        try:
            text, err = sender.finish()
        finally:
            sender.close()
    assert sender.proc.returncode == 0, err
    text = plain(text)
    assert re.search(rf"heaps: \d+  {THROUGHPUT}", text)
    final = text.rfind("heaps: 20  bytes:")  # every data heap, on screen at the end...
    summary = SENT_RE.search(text)
    assert summary is not None, text
    assert 0 <= final < summary.start()  # ...before the summary


def test_send_plain_output_has_no_progress_line() -> None:
    with udp_sink() as sink:
        result = run(tool_command(
            "send", "--heaps", "3", "--heap-size", "1000", f"127.0.0.1:{sink.getsockname()[1]}"
        ))
    assert result.returncode == 0, result.stderr
    assert SENT_RE.fullmatch(result.stdout.strip())
    assert "\x1b" not in result.stdout and "elapsed" not in result.stdout


def test_capture_progress_on_a_terminal(tmp_path) -> None:
    port = free_port()
    path = tmp_path / "out.pcap"
    capturer = TerminalProcess(tool_command("capture", "-c", "5", str(path), f"127.0.0.1:{port}"))
    try:
        wait_bound(capturer.proc, port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for i in range(5):
                tx.sendto(bytes(100 + i), ("127.0.0.1", port))
        text, err = capturer.finish()
    finally:
        capturer.close()
    assert capturer.proc.returncode == 0, err
    text = plain(text)
    assert re.search(rf"datagrams: \d+  {THROUGHPUT}  dropped: 0", text)
    final = text.rfind("datagrams: 5  bytes: 510 B")
    assert 0 <= final < text.find("Captured 5 datagrams (510 bytes of payload)")


# -- Ctrl-C ----------------------------------------------------------------------------


def test_send_ctrl_c_reports_what_was_sent_and_exits_0() -> None:
    with udp_sink() as sink:
        sink.settimeout(20)
        port = sink.getsockname()[1]
        # Endless (no --heaps) and slow: only Ctrl-C ends it.
        sender = TerminalProcess(tool_command(
            "send", "--heap-size", "1000", "--rate", "0.001", f"127.0.0.1:{port}"
        ))
        try:
            sink.recv(65536)  # it is sending
            sender.read_until(r"heaps: [1-9]\d*  bytes:")  # and has finished a heap or more
            sender.proc.send_signal(signal.SIGINT)
            text, err = sender.finish()
        finally:
            sender.close()
    assert sender.proc.returncode == 0, err
    text = plain(text)
    summary = SENT_RE.search(text)
    assert summary is not None, text
    assert int(summary[1]) > 0
    match = re.search(r"Interrupted after (\d+) heaps \(no stop heap was sent\)", err)
    assert match is not None, err
    assert int(match[1]) > 0
    # The final refresh shows the same count, above the summary.
    final = text.rfind(f"heaps: {match[1]}  bytes:")
    assert 0 <= final < summary.start()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_send_sigterm_is_a_stop_request_too() -> None:
    with udp_sink() as sink:
        sink.settimeout(20)
        sender = start(tool_command(
            "send", "--heap-size", "1000", "--rate", "0.001", f"127.0.0.1:{sink.getsockname()[1]}"
        ))
        try:
            sink.recv(65536)
            sender.send_signal(signal.SIGTERM)
            out, err = sender.communicate(timeout=60)
        finally:
            stop_process(sender)
    assert sender.returncode == 0, err
    assert SENT_RE.fullmatch(out.strip())


# -- --help and errors, for people ----------------------------------------------------

HELP_COMMANDS = [
    ("send",), ("recv",), ("capture",), ("bench",), ("bench", "agent"), ("bench", "master"),
]
MARKUP = re.compile(r"``|:(class|func|meth|attr|doc|ref|data):`|^\.\. |\*\*", re.M)


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_help_is_plain_text(command: tuple[str, ...]) -> None:
    tool, *sub = command
    result = run(tool_command(tool, *sub, "--help"))
    assert result.returncode == 0, result.stderr
    assert not MARKUP.search(result.stdout), result.stdout
    if not sub:
        assert "examples:" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "22009"],
        ["send", "--heaps", "many", "a:1"],
        ["send", "--rate", "fast", "a:1"],
        ["send", "--dtype", "nonsense", "a:1"],
        ["recv", "--log", "LOUD", "1"],
        ["recv", "--affinity", "x", "1"],
        ["recv", "--ibv-vector", "x", "1"],
        ["capture", "out.pcap", "host:port"],
        ["bench", "master", "7148"],
        ["bench", "master", "--precision", "fine", "h:1"],
    ],
    ids=" ".join,
)
def test_usage_errors_name_no_python_internals(argv: list[str]) -> None:
    result = run(tool_command(*argv))
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "expected" in error, error
    assert not re.search(r"invalid \w+ value|Error\b|parse_\w+|non_negative|positive_int", error)


def test_runtime_errors_name_no_exception_class() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        # A kernel-capped buffer too: the bind failure must be the only thing said.
        result = run(tool_command("recv", "--buffer", str(2**31 - 1), f"127.0.0.1:{port}"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"spead2_recv: error: bind: Address already in use [127.0.0.1:{port}]"
    )


def test_missing_pcap_support_says_how_to_get_it(tmp_path) -> None:
    """Without the optional cypcap package a pcap source fails with a how-to, not a traceback."""
    path = tmp_path / "x.pcap"
    path.write_bytes(b"")
    code = (
        "import sys; sys.modules['cypcap'] = None\n"  # as if it were not installed
        "from spead2.tools.recv import main; sys.exit(main())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env(),
        timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("spead2_recv: error: reading pcap files needs the optional "
                                    "cypcap package")
    assert "pip install 'aiospead2[pcap]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_capture_write_error_is_one_plain_line() -> None:
    port = free_port()
    capturer = start(tool_command("capture", "-c", "1", "/dev/full", f"127.0.0.1:{port}"))
    try:
        wait_bound(capturer, port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"x" * 100, ("127.0.0.1", port))
        out, err = capturer.communicate(timeout=60)
    finally:
        stop_process(capturer)
    assert capturer.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "spead2_capture: error writing /dev/full: No space left on device"
    )
