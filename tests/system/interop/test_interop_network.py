"""Interop over the network (loopback only), both directions.

Each case runs twice: the reference sends (a peer subprocess) and our
receiver, in this process, reports; then our sender sends and the reference's
receiver (a peer subprocess) reports. Reports are checked against what was
sent and against the reference talking to itself over bytes (the baseline).
Ports are picked by binding port 0 (or, for APIs that take a port number,
probed just before use).
"""

from __future__ import annotations

import copy
import random
import socket
from dataclasses import dataclass, field
from typing import Any

import interop_check
import interop_run
import pytest
from interop_scenarios import Scenario, incomplete, kinds, round_robin, send_substreams

pytestmark = pytest.mark.interop

#: A group per test session, so parallel runs on one host do not cross.
GROUP = f"239.255.{random.randrange(1, 255)}.{random.randrange(1, 255)}"


@dataclass
class Case:
    """A scenario sent over one transport, with the readers that receive it."""

    scenario: Scenario
    transport: str
    readers: list[dict[str, Any]]
    host: str = "127.0.0.1"
    sender_extra: dict[str, Any] = field(default_factory=dict)
    #: Our side uses spead2.send.asyncio / spead2.recv.asyncio streams.
    ours_asyncio: bool = False
    #: False when several readers give no defined delivery order.
    ordered: bool = True

    def sender(self, ports: list[int], use_asyncio: bool = False) -> dict[str, Any]:
        endpoints = [[self.host, port] for port in ports]
        extra = dict(self.sender_extra, endpoints=endpoints)
        if use_asyncio:
            extra["asyncio"] = True
        return self.scenario.sender(self.transport, **extra)

    def receiver(self, use_asyncio: bool = False) -> dict[str, Any]:
        extra: dict[str, Any] = {"deadline": interop_run.DEADLINE}
        if use_asyncio:
            extra["asyncio"] = True
        return self.scenario.receiver(copy.deepcopy(self.readers), **extra)


UDP = {"kind": "udp", "host": "127.0.0.1"}
TCP = {"kind": "tcp", "host": "127.0.0.1"}

CASES: dict[str, Case] = {
    "udp-1472": Case(kinds("64-40", max_packet_size=1472), "udp", [UDP]),
    "udp-9000": Case(
        kinds("64-48", max_packet_size=9000, big=12000), "udp", [UDP], ours_asyncio=True
    ),
    "tcp": Case(kinds("64-40", max_packet_size=8192, big=12000), "tcp", [TCP]),
    "tcp-round-robin": Case(round_robin(), "tcp", [TCP], ours_asyncio=True),
    "ipv6": Case(kinds("64-40"), "udp", [{"kind": "udp_port", "host": "::1"}], host="::1"),
    "multicast": Case(
        kinds("64-40"),
        "udp",
        [{"kind": "multicast", "group": GROUP, "interface": "127.0.0.1"}],
        host=GROUP,
        sender_extra={"ttl": 1, "interface_address": "127.0.0.1"},
    ),
    "udp-substreams": Case(send_substreams(), "udp", [UDP, UDP], ordered=False),
    "udp-incomplete": Case(incomplete(), "udp", [UDP]),
    "udp-rate-round-robin": Case(round_robin(), "udp", [UDP], sender_extra={"rate": 5e6}),
}


def _bytes_sender(scenario: Scenario) -> dict[str, Any]:
    spec = scenario.sender("bytes")
    for heap in spec["heaps"]:
        heap.pop("substream", None)  # a BytesStream has one substream
    return spec


@pytest.fixture(scope="module")
def baselines(reference_python: str) -> dict[str, dict[str, Any]]:
    """What the reference's receiver makes of its own bytes, per case."""
    request = {
        "scenarios": [
            {"send": _bytes_sender(c.scenario), "recv": c.scenario.receiver([])}
            for c in CASES.values()
        ]
    }
    results = interop_run.run_peer(reference_python, "ref_loopback.py", request)
    for name, result in zip(CASES, results, strict=True):
        assert "send_error" not in result, (name, result)
    return {name: result["recv"] for name, result in zip(CASES, results, strict=True)}


def _skip_if_unsupported(case: Case) -> None:
    """Skip (saying why) where the host has no IPv6 loopback or no multicast on lo."""
    if case.host == "::1":
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
                sock.bind(("::1", 0))
        except OSError as exc:
            pytest.skip(f"no IPv6 loopback: {exc}")
    if case.host == GROUP:
        try:
            _multicast_probe()
        except OSError as exc:
            pytest.skip(f"IPv4 multicast on the loopback interface does not work here: {exc!r}")


def _multicast_probe() -> None:
    loopback = socket.inet_aton("127.0.0.1")
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("0.0.0.0", 0))
        rx.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(GROUP) + loopback
        )
        rx.settimeout(2.0)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, loopback)
        tx.sendto(b"probe", (GROUP, rx.getsockname()[1]))
        rx.recv(16)  # socket.timeout (an OSError) if nothing arrives


@pytest.mark.parametrize("name", list(CASES))
def test_reference_to_ours(
    name: str, reference_python: str, baselines: dict[str, dict[str, Any]]
) -> None:
    case = CASES[name]
    _skip_if_unsupported(case)
    recv_spec = case.receiver(use_asyncio=case.ours_asyncio)
    report, sent = interop_run.our_receive(
        recv_spec, lambda ports: interop_run.ref_send(reference_python, case.sender(ports))
    )
    interop_check.check(
        report,
        case.scenario.sender(case.transport),
        recv_spec,
        sent,
        baselines[name],
        case.ordered,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_ours_to_reference(
    name: str,
    reference_python: str,
    baselines: dict[str, dict[str, Any]],
) -> None:
    case = CASES[name]
    _skip_if_unsupported(case)
    recv_spec = case.receiver()
    report, sent = interop_run.ref_receive(
        reference_python,
        recv_spec,
        lambda ports: interop_run.our_send(case.sender(ports, use_asyncio=case.ours_asyncio)),
    )
    interop_check.check(
        report,
        case.scenario.sender(case.transport),
        recv_spec,
        sent,
        baselines[name],
        case.ordered,
    )
