"""Tests for the socket set-up the network transports share (spead2/transports/sockets.py)."""

from __future__ import annotations

import logging
import os
import socket

import pytest

from spead2.transports import sockets


def test_resolve_endpoint_prefers_the_family_asked_for() -> None:
    family, addr = sockets.resolve_endpoint("localhost", 7148, socket.SOCK_DGRAM, socket.AF_INET)
    assert family == socket.AF_INET and addr == ("127.0.0.1", 7148)
    # An empty host is the IPv4 wildcard, as in the reference.
    assert sockets.resolve_endpoint("", 9, socket.SOCK_STREAM) == (socket.AF_INET, ("0.0.0.0", 9))


def test_resolve_endpoint_errors_say_what_went_wrong() -> None:
    with pytest.raises(RuntimeError, match=r"^resolve: .*\['no\.such\.host\.invalid'\]"):
        sockets.resolve_endpoint("no.such.host.invalid", 1, socket.SOCK_DGRAM)
    with pytest.raises(ValueError, match="'127.0.0.1' is IPv4, the socket is IPv6"):
        sockets.resolve_endpoint("127.0.0.1", 1, socket.SOCK_DGRAM, socket.AF_INET6)


def test_bind_failure_names_the_endpoint() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with pytest.raises(RuntimeError, match=rf"^bind: Address already in use \[127\.0\.0\.1:{port}\]$"):
                sockets.bind(sock, ("127.0.0.1", port))
            with pytest.raises(RuntimeError, match=r"^bind: .* \[the source\]$"):
                sockets.bind(sock, ("127.0.0.1", port), "the source")


def test_bound_receive_socket_closes_the_socket_when_set_up_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[socket.socket] = []
    new_socket = sockets.new_socket

    def recording_new_socket(family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
        opened.append(new_socket(family, kind))
        return opened[-1]

    monkeypatch.setattr(sockets, "new_socket", recording_new_socket)

    def fail(sock: socket.socket) -> None:
        raise RuntimeError("then failed")

    with pytest.raises(RuntimeError, match="then failed"):
        sockets.bound_receive_socket(
            socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0), 0, reuse_address=False, then=fail
        )
    assert len(opened) == 1 and opened[0].fileno() == -1  # closed

    sock = sockets.bound_receive_socket(
        socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0), 0, reuse_address=True
    )
    with sock:
        assert sock.getsockname()[0] == "127.0.0.1"
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)


def test_a_smaller_buffer_than_asked_for_is_only_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spead2"):
        sock = sockets.bound_receive_socket(
            socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0), 2**40, reuse_address=False
        )
    sock.close()
    assert "requested socket buffer size 1099511627776 but only received" in caplog.text


@pytest.mark.parametrize("blocking", [True, False])
def test_duplicate_socket_keeps_the_callers_blocking_mode(blocking: bool) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as original:
        original.settimeout(5.0 if blocking else 0.0)  # a timeout makes the descriptor non-blocking
        fd_blocking = os.get_blocking(original.fileno())
        dup = sockets.duplicate_socket(original)
    with dup:
        assert dup.fileno() != original.fileno()
        assert os.get_blocking(dup.fileno()) == fd_blocking
        # Python's timeout agrees with the descriptor, whatever the caller's was.
        assert dup.gettimeout() == (None if fd_blocking else 0.0)


def test_socket_handoff_closes_what_no_reader_took() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    handoff = sockets.SocketHandoff(sock)
    handoff.discard()
    assert sock.fileno() == -1
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    handoff = sockets.SocketHandoff(sock)
    assert handoff.take() is sock
    with pytest.raises(RuntimeError, match="already taken"):
        handoff.take()
    handoff.discard()
    assert sock.fileno() != -1
    sock.close()
