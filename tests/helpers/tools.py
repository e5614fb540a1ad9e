"""Helpers for the tests that run the command-line tools and examples as subprocesses.

Every wait here is bounded: subprocesses get a timeout, and readiness polls
give up after ``READY_TIMEOUT`` seconds (failing the test with a message).
"""

from __future__ import annotations

import errno
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 20.0
RUN_TIMEOUT = 60.0


def env() -> dict[str, str]:
    """The environment for our subprocesses: the repository on ``sys.path``, no colours."""
    result = dict(os.environ)
    result["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    result.pop("FORCE_COLOR", None)
    result["PYTHONUNBUFFERED"] = "1"
    return result


def free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    """A port that is free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as sock:
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found")


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports."""
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def consecutive_ports(n: int) -> int:
    """The first of ``n`` consecutive free ports."""
    for _ in range(100):
        first = free_port()
        if first + n > 65535:
            continue
        try:
            for port in range(first + 1, first + n):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as sock:
                        sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError("no free consecutive ports found")


def is_bound(port: int, kind: socket.SocketKind, host: str = "127.0.0.1") -> bool:
    """Whether someone holds ``port`` (our bind attempt fails with EADDRINUSE)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def wait_bound(
    proc: subprocess.Popen[str], port: int, kind: socket.SocketKind = socket.SOCK_DGRAM,
    host: str = "127.0.0.1",
) -> None:
    """Wait until ``proc`` has bound ``port`` (fails if it exits or takes too long)."""

    def state() -> str:
        if is_bound(port, kind, host):
            return "bound"
        return "exited" if proc.poll() is not None else ""

    try:
        outcome = wait_for(state, f"port {port} to be bound", timeout=READY_TIMEOUT)
    except AssertionError:
        proc.kill()
        raise
    if outcome == "exited":
        out, err = proc.communicate()
        raise AssertionError(f"process exited with {proc.returncode}:\n{out}\n{err}")


def tool_command(tool: str, *args: str) -> list[str]:
    """``python -m spead2.tools.<tool> args...``."""
    return [sys.executable, "-m", f"spead2.tools.{tool}", *args]


def run(command: Sequence[str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run to completion and capture the output."""
    return subprocess.run(
        list(command), capture_output=True, text=True, env=env(), cwd=REPO, timeout=timeout,
        check=False,
    )


def start(command: Sequence[str]) -> subprocess.Popen[str]:
    """Start in the background with captured output."""
    return subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
        cwd=REPO,
    )


def finish(proc: subprocess.Popen[str], timeout: float = RUN_TIMEOUT) -> tuple[str, str]:
    """Wait for the process (killing it if it overruns) and return (stdout, stderr)."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process did not finish within {timeout} s:\n{out}\n{err}") from None


def interrupt(proc: subprocess.Popen[str], timeout: float = RUN_TIMEOUT) -> tuple[str, str]:
    """Send SIGINT (Ctrl-C) and collect the output."""
    proc.send_signal(signal.SIGINT)
    return finish(proc, timeout)


def stop_process(proc: subprocess.Popen[str]) -> None:
    """Make sure a background process is gone (for ``finally`` blocks)."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


class TerminalProcess:
    """A tool running with its stdout on a pseudo-terminal (as in a terminal), stderr piped.

    :meth:`read_until` and :meth:`finish` collect what it writes to the
    terminal (``text``), each bounded in time.
    """

    def __init__(self, command: Sequence[str]) -> None:
        self._master, slave = pty.openpty()
        try:
            self.proc = subprocess.Popen(
                list(command), stdout=slave, stderr=subprocess.PIPE, text=True,
                env={**env(), "COLUMNS": "160", "TERM": "xterm"}, cwd=REPO,
            )
        finally:
            os.close(slave)
        self._chunks: list[bytes] = []

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the terminal is closed."""
        ready, _, _ = select.select([self._master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # the other end closed
            return False
        if data:
            self._chunks.append(data)
        return bool(data)

    def read_until(self, pattern: str, timeout: float = READY_TIMEOUT) -> re.Match[str]:
        """Read until ``pattern`` (a regular expression) appears in the output."""
        deadline = time.monotonic() + timeout
        while (match := re.search(pattern, self.text)) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.5)):
                if (match := re.search(pattern, self.text)) is not None:
                    break
                raise AssertionError(f"{pattern!r} not seen within {timeout} s:\n{self.text}")
        return match

    def finish(self, timeout: float = RUN_TIMEOUT) -> tuple[str, str]:
        """Read until the process exits; returns (terminal text, stderr)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.5):
            pass
        try:
            _, err = self.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise AssertionError(f"process did not finish within {timeout} s:\n{self.text}") from None
        return self.text, err

    def close(self) -> None:
        """Kill the process if it is still running and close the terminal (for ``finally``)."""
        stop_process(self.proc)
        os.close(self._master)
