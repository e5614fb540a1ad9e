"""Interop through pcap files captured from real loopback traffic (tcpdump).

One side sends UDP on the loopback interface while tcpdump captures it; the
other side reads the capture with ``add_udp_pcap_file_reader``, without a
filter (only the wanted stream was captured) and with one (a decoy stream,
sent first and ending with its own stop heap, was captured too: if the
filter were ignored, the decoy's heaps and stop would show up instead).

The reference wheel from PyPI is built without libpcap (it has no
``add_udp_pcap_file_reader``); in the ours → reference direction its peer
then extracts the UDP payloads of the capture itself, keeping those to the
filter's port, and feeds them to ``add_buffer_reader`` (reported in the
receiver's ``notes`` as ``pcap-fallback``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import interop_check
import interop_peer as peer
import interop_run
import pytest
from interop_scenarios import kinds, round_robin

import spead2

pytestmark = pytest.mark.interop

SCENARIO = kinds("64-40", max_packet_size=1472)
DECOY = round_robin()

Sender = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def sinks() -> Iterator[list[int]]:
    """Three bound UDP ports on 127.0.0.1: the stream, the decoy and the capture marker.

    Bound so that the senders never meet ICMP port-unreachable errors; nobody reads them.
    """
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        yield [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture(scope="module")
def baseline(reference_python: str) -> dict[str, Any]:
    request = {"scenarios": [{"send": SCENARIO.sender("bytes"), "recv": SCENARIO.receiver([])}]}
    (result,) = interop_run.run_peer(reference_python, "ref_loopback.py", request)
    return result["recv"]


def _capture(
    tcpdump: str, path: Path, ports: list[int], send: Sender, with_decoy: bool
) -> dict[str, Any]:
    """Send the scenario (after the decoy, if wanted) to the sink ports while capturing."""
    port, decoy_port, marker_port = ports
    captured = [port, marker_port] + ([decoy_port] if with_decoy else [])
    expression = "udp and (" + " or ".join(f"dst port {p}" for p in captured) + ")"
    capture = interop_run.Capture(tcpdump, path, expression)
    try:
        if with_decoy:
            send(DECOY.sender("udp", endpoints=[["127.0.0.1", decoy_port]]))
        sent = send(SCENARIO.sender("udp", endpoints=[["127.0.0.1", port]]))
    except BaseException:
        capture.stop()
        raise
    capture.finish(marker_port)
    # The capture really holds the traffic (and the decoy, when there is one).
    assert peer.pcap_udp_payloads(str(path), port)
    assert bool(peer.pcap_udp_payloads(str(path), decoy_port)) == with_decoy
    return sent


def _receiver(path: Path, port: int, with_filter: bool) -> dict[str, Any]:
    reader = {
        "kind": "pcap",
        "path": str(path),
        "filter": f"udp dst port {port}" if with_filter else None,
        "dst_port": port,
    }
    return SCENARIO.receiver([reader])


@pytest.mark.parametrize("with_filter", [False, True], ids=["no-filter", "filter"])
def test_reference_to_ours(
    with_filter: bool,
    reference_python: str,
    tcpdump: str,
    tmp_path: Path,
    sinks: list[int],
    baseline: dict[str, Any],
) -> None:
    path = tmp_path / "capture.pcap"
    sent = _capture(
        tcpdump, path, sinks, lambda spec: interop_run.ref_send(reference_python, spec), with_filter
    )
    recv_spec = _receiver(path, sinks[0], with_filter)
    report = peer.receive(spead2, recv_spec)
    assert report["notes"] == []  # our own pcap reader, not the fallback
    interop_check.check(report, SCENARIO.sender("udp"), recv_spec, sent, baseline)


@pytest.mark.parametrize("with_filter", [False, True], ids=["no-filter", "filter"])
def test_ours_to_reference(
    with_filter: bool,
    reference_python: str,
    tcpdump: str,
    tmp_path: Path,
    sinks: list[int],
    baseline: dict[str, Any],
) -> None:
    path = tmp_path / "capture.pcap"
    sent = _capture(tcpdump, path, sinks, interop_run.our_send, with_filter)
    recv_spec = _receiver(path, sinks[0], with_filter)
    report = interop_run.run_peer(reference_python, "ref_receiver.py", {"batch": [recv_spec]})[0]
    interop_check.check(report, SCENARIO.sender("udp"), recv_spec, sent, baseline)
