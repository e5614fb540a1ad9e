"""Running the two sides of an interop case: reference peers as subprocesses, ours in-process.

Every subprocess and thread has a timeout; on failure the peer's stderr is
included in the assertion message.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import interop_peer as peer
import pytest

import spead2

HERE = Path(__file__).parent
#: How long a receiver waits for its heaps before giving up (the case then fails).
DEADLINE = 20.0
#: Extra time allowed on top of the deadline for a peer to start and report.
SLACK = 15.0

peer.load_submodules(spead2)


class Peer:
    """A reference peer script running under the reference interpreter."""

    def __init__(self, python: str, script: str, request: dict[str, Any]) -> None:
        self._stderr = tempfile.TemporaryFile()
        # -E -s: no PYTHONPATH (which could lead to the project's spead2) nor user site.
        self.proc = subprocess.Popen(
            [python, "-E", "-s", str(HERE / script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request).encode())
        self.proc.stdin.close()
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""

    def stderr(self) -> str:
        """What the peer wrote to stderr so far (last 4000 characters)."""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def read_line(self, timeout: float) -> Any:
        """The next JSON line the peer prints; fails after ``timeout`` seconds or at EOF."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                pytest.fail(f"reference peer: no output within {timeout} s\n{self.stderr()}")
            readable, _, _ = select.select([self._fd], [], [], remaining)
            if readable:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    self.proc.wait(timeout=10)
                    pytest.fail(
                        f"reference peer exited ({self.proc.returncode}) early\n{self.stderr()}"
                    )
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def finish(self, timeout: float) -> Any:
        """The peer's last line, once it has exited successfully."""
        result = self.read_line(timeout)
        try:
            returncode = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        assert returncode == 0, f"reference peer failed ({returncode})\n{self.stderr()}"
        return result

    def kill(self) -> None:
        """Kill the peer (this process started it) if it still runs, and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def close(self) -> None:
        """Kill and reap the peer if needed, and close its pipes."""
        self.kill()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._stderr.close()


def run_peer(python: str, script: str, request: dict[str, Any], timeout: float = 60.0) -> Any:
    """Run a peer to completion and return its (single) result line."""
    p = Peer(python, script, request)
    try:
        return p.finish(timeout)
    finally:
        p.close()


def ref_send(python: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The reference sends ``spec``; returns its result (fails the test on an error)."""
    result = run_peer(python, "ref_sender.py", spec, timeout=DEADLINE + SLACK)
    assert "error" not in result, f"the reference sender failed: {result['error']}"
    return result


def ref_receive(
    python: str, recv_spec: dict[str, Any], send: Callable[[list[int]], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reference receives as ``recv_spec`` says while ``send(ports)`` (ours) sends.

    Returns the receiver's report and what ``send`` returned.
    """
    p = Peer(python, "ref_receiver.py", recv_spec)
    try:
        ports = p.read_line(SLACK)["ready"]
        sent = send(ports)
        report = p.finish(recv_spec.get("deadline", DEADLINE) + SLACK)
    finally:
        p.close()
    return report, sent


def our_receive(
    recv_spec: dict[str, Any],
    send: Callable[[list[int]], dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our receiver (in a thread) receives as ``recv_spec`` says while ``send(ports)`` sends."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    def on_ready(ports: list[int], stream: Any) -> None:
        box["ports"] = ports
        box["stream"] = stream
        ready.set()

    def run() -> None:
        try:
            box["report"] = peer.receive(spead2, recv_spec, on_ready)
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert ready.wait(SLACK), "our receiver did not get ready"
        if "error" in box:
            raise box["error"]
        sent = send(box["ports"])
    except BaseException:
        if "stream" in box:
            box["stream"].stop()
        thread.join(SLACK)
        raise
    thread.join(recv_spec.get("deadline", DEADLINE) + SLACK)
    assert not thread.is_alive(), "our receiver did not finish"
    if "error" in box:
        raise box["error"]
    return box["report"], sent


def our_send(spec: dict[str, Any]) -> dict[str, Any]:
    """Our implementation sends ``spec`` (in this thread)."""
    return peer.send(spead2, spec)


# ---------------------------------------------------------------------------
# Packet capture


class Capture:
    """tcpdump writing the loopback traffic that matches ``expression`` to ``path``."""

    def __init__(self, tcpdump: str, path: Path, expression: str) -> None:
        self.path = path
        command = [tcpdump, "-i", "lo", "-U", "-n", "-w", str(path)]
        if os.geteuid() == 0:
            command += ["-Z", "root"]  # keep the right to write where pytest put path
        command.append(expression)
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        self._fd = self.proc.stderr.fileno()
        self.messages = b""
        deadline = time.monotonic() + 10
        while b"listening on" not in self.messages:
            remaining = deadline - time.monotonic()
            readable, _, _ = select.select([self._fd], [], [], max(remaining, 0))
            chunk = os.read(self._fd, 4096) if readable else b""
            if not chunk:
                self.stop()
                pytest.skip(
                    f"tcpdump cannot capture on lo: {self.messages.decode(errors='replace')}"
                )
            self.messages += chunk

    def finish(self, marker_port: int) -> None:
        """Stop once everything sent so far is in the file.

        Loopback traffic is captured in the order it is sent, so a marker
        datagram sent now, once it shows up in the file, proves that the
        earlier packets are there too.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sock.sendto(b"capture marker", ("127.0.0.1", marker_port))
                time.sleep(0.05)  # a deadline wait: the marker is sent again until it shows up
                if self.path.exists() and peer.pcap_udp_payloads(str(self.path), marker_port):
                    break
            else:
                self.stop()
                pytest.fail("tcpdump did not capture the marker datagram")
        self.stop()

    def stop(self) -> None:
        """Stop tcpdump (which this process started) and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


def find_tcpdump() -> str:
    """The tcpdump executable, or skip."""
    path = shutil.which("tcpdump") or next(
        (p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump") if os.access(p, os.X_OK)), None
    )
    if path is None:
        pytest.skip("tcpdump is not installed (apt-get install -y tcpdump)")
    return path
