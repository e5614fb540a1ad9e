"""The command-line tools: options (every one in TOOLS.md), and real runs over loopback.

Option handling is tested in-process through each tool's ``parse_args`` and
settings objects; behaviour is tested by running the tools as subprocesses
(``python -m spead2.tools.<tool>``) against each other over 127.0.0.1, every
run bounded in heaps and time.
"""

from __future__ import annotations

import argparse
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.send
from spead2.protocols.pcap import FrameBuilder, file_header
from spead2.tools import (
    _arguments,
    _cli,
    _progress,
    _settings,
    bench,
    capture,
    recv,
    send,
)
from tests.helpers.tools import (
    READY_TIMEOUT,
    TerminalProcess,
    finish,
    free_port,
    free_ports,
    interrupt,
    run,
    start,
    stop_process,
    tool_command,
    wait_bound,
)

# -- expected output (TOOLS.md) -------------------------------------------------------

DESCRIPTOR_BLOCK = """\
    Descriptor for Test item {i} (0x100{i})
      description: A test item with arbitrary value
      format:      None
      dtype:       uint16
      shape:       (16,)"""
ZEROS = "[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0]"
SENT_RE = re.compile(r"^Sent (\d+) bytes in \d+\.\d{6}s, \d+\.\d{6} Gb/s$")
CORE_STATS = [
    "heaps", "incomplete_heaps_evicted", "incomplete_heaps_flushed", "packets", "batches",
    "max_batch", "single_packet_heaps", "search_dist", "worker_blocked",
]


def stats_of(output: str, stream: str) -> dict[str, int]:
    """The statistics block printed after ``Shutting down stream <stream>``."""
    lines = output.splitlines()
    start_index = next(
        i for i, line in enumerate(lines) if line.startswith(f"Shutting down stream {stream} ")
    )
    stats = {}
    for line in lines[start_index + 1 :]:
        match = re.fullmatch(r"(\w+): (\d+)", line)
        if not match:
            break
        stats[match[1]] = int(match[2])
    return stats


# -- option parsing: every option of TOOLS.md ------------------------------------------

SEND_DEFAULTS = {
    "heap_size": 4194304, "items": 1, "dtype": np.dtype("<c8"), "heaps": None, "log": "INFO",
    "tcp": False, "pyspead": False, "addr_bits": 40, "packet": 1472, "burst": 65536,
    "burst_rate_ratio": 1.05, "max_heaps": 4, "rate_method": spead2.send.RateMethod.AUTO,
    "rate": 0.0, "ttl": None, "buffer": None, "bind": None, "affinity": None, "threads": 1,
    "descriptors": None,
}

RECV_DEFAULTS = {
    "log": "INFO", "values": False, "descriptors": False, "max_heaps": None, "joint": False,
    "tcp": False, "pyspead": False, "memcpy_nt": False, "concurrent_heaps": 4, "substreams": 1,
    "ring_heaps": 4, "mem_pool": False, "mem_lower": 16384, "mem_upper": 33554432,
    "mem_max_free": 12, "mem_initial": 8, "packet": None, "buffer": None, "bind": None,
    "affinity": None, "threads": 1,
}

MASTER_DEFAULTS = {
    "quiet": False, "heap_size": 4194304, "multicast": None, "pyspead": False, "addr_bits": 40,
    "burst": 65536, "burst_rate_ratio": 1.05, "max_heaps": 4,
    "rate_method": spead2.send.RateMethod.AUTO, "ttl": None, "send_buffer": None,
    "send_bind": None, "send_affinity": None, "send_threads": 1, "memcpy_nt": False,
    "concurrent_heaps": 4, "substreams": 1, "ring_heaps": 4, "mem_max_free": 12,
    "mem_initial": 8, "packet": None, "recv_buffer": None, "recv_bind": None,
    "recv_affinity": None, "recv_threads": 1,
}


def test_send_defaults() -> None:
    args = send.parse_args(["127.0.0.1:7148"])
    assert args.destination == [("127.0.0.1", 7148)]
    for name, value in SEND_DEFAULTS.items():
        assert getattr(args, name) == value, name


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["--heap-size", "100"], "heap_size", 100),
        (["--items", "3"], "items", 3),
        (["--dtype", ">i4"], "dtype", np.dtype(">i4")),
        (["--heaps", "7"], "heaps", 7),
        (["--log", "debug"], "log", "DEBUG"),
        (["--tcp"], "tcp", True),
        (["--pyspead"], "pyspead", True),
        (["--addr-bits", "48"], "addr_bits", 48),
        (["--packet", "9000"], "packet", 9000),
        (["--burst", "1000"], "burst", 1000),
        (["--burst-rate-ratio", "1.5"], "burst_rate_ratio", 1.5),
        (["--max-heaps", "9"], "max_heaps", 9),
        (["--rate-method", "sw"], "rate_method", spead2.send.RateMethod.SW),
        (["--rate-method", "HW"], "rate_method", spead2.send.RateMethod.HW),
        (["--rate", "2.5"], "rate", 2.5),
        (["--ttl", "3"], "ttl", 3),
        (["--buffer", "100000"], "buffer", 100000),
        (["--bind", "127.0.0.1"], "bind", "127.0.0.1"),
        (["--affinity", "0,2-3"], "affinity", [0, 2, 3]),
        (["--threads", "2"], "threads", 2),
        (["--descriptors", "5"], "descriptors", 5),
    ],
)
def test_send_option(argv: list[str], attribute: str, value: object) -> None:
    assert getattr(send.parse_args([*argv, "127.0.0.1:7148"]), attribute) == value


def test_send_settings_build_the_stream_config() -> None:
    args = send.parse_args([
        "--packet", "9000", "--burst", "1000", "--burst-rate-ratio", "1.5", "--max-heaps", "9",
        "--rate-method", "SW", "--rate", "8", "--addr-bits", "48", "--pyspead", "h:1",
    ])
    settings = _settings.SenderSettings.from_args(args)
    config = settings.stream_config()
    assert config.max_packet_size == 9000
    assert config.burst_size == 1000
    assert config.burst_rate_ratio == 1.5
    assert config.max_heaps == 9
    assert config.rate_method == spead2.send.RateMethod.SW
    assert config.rate == pytest.approx(1e9)  # 8 Gb/s in bytes/s
    assert settings.flavour() == spead2.Flavour(4, 64, 48, spead2.BUG_COMPAT_PYSPEAD_0_5_2)


def test_send_item_group_matches_reference(caplog: pytest.LogCaptureFixture) -> None:
    args = send.parse_args(["--heap-size", "100", "--items", "2", "--dtype", "<u4", "h:1"])
    group = send.make_item_group(args, spead2.Flavour())
    assert "Heap size is not an exact multiple: using 96 instead of 100" in caplog.text
    assert [item.name for item in group.values()] == ["Test item 0", "Test item 1"]
    assert [item.id for item in group.values()] == [0x1000, 0x1001]
    item = group["Test item 1"]
    assert item.description == "A test item with arbitrary value"
    assert item.shape == (12,)
    assert item.dtype == np.dtype("<u4")
    assert np.array_equal(item.value, np.zeros(12, "<u4"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["22009"], "argument HOST:PORT: expected HOST:PORT with a port from 0 to 65535"),
        (["--tcp", "a:1", "b:2"], "only one destination is supported with TCP"),
        (["--rate-method", "foo", "a:1"], "argument --rate-method: expected SW, HW or AUTO, got 'foo'"),
        (["--heap-size", "big", "a:1"], "argument --heap-size: expected an integer, got 'big'"),
        (["--dtype", "nope", "a:1"], "argument --dtype: expected a numpy data type"),
        (["--affinity", "x", "a:1"], "argument --affinity: expected a list of CPU numbers"),
        (["--burst-rate-ratio", "fast", "a:1"], "argument --burst-rate-ratio: expected a number"),
        (["--ibv", "a:1"], "--ibv: this implementation has no ibverbs support"),
        (["--ibv", "--bind", "1.2.3.4", "a:1"], "--ibv: this implementation has no ibverbs"),
        (["--ibv-vector", "1", "a:1"], "--ibv-vector: this implementation has no ibverbs"),
        (["--ibv-max-poll", "3", "a:1"], "--ibv-max-poll: this implementation has no ibverbs"),
        (["--items", "0", "a:1"], "argument --items"),
        (["--heap-size", "4", "--dtype", "<c8", "a:1"], "--heap-size 4 is too small"),
        (["--burst-rate-ratio", "0.5", "a:1"], "--burst-rate-ratio must be at least 1.0"),
        (["--log", "NOISY", "a:1"], "argument --log"),
        (["--tcp", "--ttl", "2", "a:1"], "--ttl applies to UDP multicast"),
    ],
)
def test_send_refuses(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        send.parse_args(argv, "spead2_send")
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_recv_defaults() -> None:
    args = recv.parse_args(["7148"])
    assert args.sources == [("", 7148)]
    for name, value in RECV_DEFAULTS.items():
        assert getattr(args, name) == value, name


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["--log", "warning"], "log", "WARNING"),
        (["--values"], "values", True),
        (["--descriptors"], "descriptors", True),
        (["--max-heaps", "3"], "max_heaps", 3),
        (["--joint"], "joint", True),
        (["--tcp"], "tcp", True),
        (["--pyspead"], "pyspead", True),
        (["--memcpy-nt"], "memcpy_nt", True),
        (["--concurrent-heaps", "7"], "concurrent_heaps", 7),
        (["--substreams", "3"], "substreams", 3),
        (["--ring-heaps", "5"], "ring_heaps", 5),
        (["--mem-pool"], "mem_pool", True),
        (["--mem-lower", "100"], "mem_lower", 100),
        (["--mem-upper", "200"], "mem_upper", 200),
        (["--mem-max-free", "3"], "mem_max_free", 3),
        (["--mem-initial", "2"], "mem_initial", 2),
        (["--packet", "1500"], "packet", 1500),
        (["--buffer", "65536"], "buffer", 65536),
        (["--bind", "127.0.0.1"], "bind", "127.0.0.1"),
        (["--affinity", "1"], "affinity", [1]),
        (["--threads", "2"], "threads", 2),
    ],
)
def test_recv_option(argv: list[str], attribute: str, value: object) -> None:
    assert getattr(recv.parse_args([*argv, "7148"]), attribute) == value


def test_recv_sources() -> None:
    args = recv.parse_args(["7148", "127.0.0.1:7149", "captures/t1.pcap", "c:/x", "::1:7150"])
    assert args.sources == [
        ("", 7148), ("127.0.0.1", 7149), "captures/t1.pcap", "c:/x", ("::1", 7150),
    ]
    assert args.source == ["7148", "127.0.0.1:7149", "captures/t1.pcap", "c:/x", "::1:7150"]


def test_recv_settings_build_the_configs() -> None:
    args = recv.parse_args([
        "--pyspead", "--memcpy-nt", "--concurrent-heaps", "7", "--substreams", "3",
        "--ring-heaps", "5", "--mem-pool", "--mem-lower", "10", "--mem-upper", "20",
        "--mem-max-free", "3", "--mem-initial", "2", "7148",
    ])
    settings = _settings.ReceiverSettings.from_args(args)
    config = settings.stream_config()
    assert config.max_heaps == 7
    assert config.substreams == 3
    assert config.bug_compat == spead2.BUG_COMPAT_PYSPEAD_0_5_2
    assert config.memcpy == spead2.MEMCPY_NONTEMPORAL
    pool = config.memory_allocator
    assert isinstance(pool, spead2.MemoryPool)
    assert (pool.lower, pool.upper, pool.max_free, pool.initial) == (10, 20, 3, 2)
    assert settings.ring_config().heaps == 5


class RecordingStream:
    """Stands in for a stream and records which reader methods were called."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, *args))


@pytest.mark.parametrize(
    ("argv", "source", "call"),
    [
        ([], ("", 7148), ("add_udp_reader", 7148, 9200, 8388608, "")),
        ([], ("127.0.0.1", 7148), ("add_udp_reader", 7148, 9200, 8388608, "127.0.0.1")),
        (["--packet", "1500", "--buffer", "4096"], ("h", 1), ("add_udp_reader", 1, 1500, 4096, "h")),
        (["--tcp"], ("h", 7148), ("add_tcp_reader", 7148, 65536, 212992, "h")),
        (["--bind", "10.0.0.1"], ("239.1.2.3", 7148),
         ("add_udp_reader", "239.1.2.3", 7148, 9200, 8388608, "10.0.0.1")),
        ([], "t1.pcap", ("add_udp_pcap_file_reader", "t1.pcap")),
    ],
)
def test_recv_reader_selection(argv: list[str], source: _arguments.Source, call: tuple[Any, ...]) -> None:
    settings = _settings.ReceiverSettings.from_args(recv.parse_args([*argv, "1"]))
    stream = RecordingStream()
    settings.add_reader(stream, source)  # type: ignore[arg-type]
    assert stream.calls == [call]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ibv", "1"], "--ibv: this implementation has no ibverbs support"),
        (["--ibv-vector", "-1", "1"], "--ibv-vector: this implementation has no ibverbs"),
        (["--ibv-max-poll", "5", "1"], "--ibv-max-poll: this implementation has no ibverbs"),
        (["--tcp", "--bind", "127.0.0.1", "1"], "--bind applies to UDP"),
        (["--concurrent-heaps", "0", "1"], "argument --concurrent-heaps"),
        (["70000"], "port out of range"),
        ([], "the following arguments are required: source"),
    ],
)
def test_recv_refuses(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        recv.parse_args(argv, "spead2_recv")
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_bench_master_defaults() -> None:
    args = bench.parse_args(["master", "127.0.0.1:7148"])
    assert args.log == "INFO"
    assert args.endpoint == ("127.0.0.1", 7148)
    for name, value in MASTER_DEFAULTS.items():
        assert getattr(args, name) == value, name
    assert (args.pass_bytes, args.passes, args.precision) == (1e9, 5, 0.02)


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        (["--quiet"], "quiet", True),
        (["--heap-size", "1000"], "heap_size", 1000),
        (["--multicast", "239.1.2.3"], "multicast", "239.1.2.3"),
        (["--pyspead"], "pyspead", True),
        (["--addr-bits", "48"], "addr_bits", 48),
        (["--burst", "100"], "burst", 100),
        (["--burst-rate-ratio", "2"], "burst_rate_ratio", 2.0),
        (["--max-heaps", "2"], "max_heaps", 2),
        (["--rate-method", "auto"], "rate_method", spead2.send.RateMethod.AUTO),
        (["--ttl", "4"], "ttl", 4),
        (["--send-buffer", "1000"], "send_buffer", 1000),
        (["--send-bind", "127.0.0.1"], "send_bind", "127.0.0.1"),
        (["--send-affinity", "0-1"], "send_affinity", [0, 1]),
        (["--send-threads", "2"], "send_threads", 2),
        (["--memcpy-nt"], "memcpy_nt", True),
        (["--concurrent-heaps", "8"], "concurrent_heaps", 8),
        (["--substreams", "2"], "substreams", 2),
        (["--ring-heaps", "8"], "ring_heaps", 8),
        (["--mem-max-free", "1"], "mem_max_free", 1),
        (["--mem-initial", "1"], "mem_initial", 1),
        (["--packet", "1500"], "packet", 1500),
        (["--recv-buffer", "1000"], "recv_buffer", 1000),
        (["--recv-bind", "127.0.0.1"], "recv_bind", "127.0.0.1"),
        (["--recv-affinity", "0"], "recv_affinity", [0]),
        (["--recv-threads", "3"], "recv_threads", 3),
    ],
)
def test_bench_master_option(argv: list[str], attribute: str, value: object) -> None:
    args = bench.parse_args(["--log", "ERROR", "master", *argv, "127.0.0.1:7148"])
    assert getattr(args, attribute) == value
    assert args.log == "ERROR"


@pytest.mark.parametrize(
    "argv",
    [
        ["master", "--send-ibv", "h:1"],
        ["master", "--send-ibv-vector", "1", "h:1"],
        ["master", "--send-ibv-max-poll", "1", "h:1"],
        ["master", "--recv-ibv", "h:1"],
        ["master", "--recv-ibv-vector", "1", "h:1"],
        ["master", "--recv-ibv-max-poll", "1", "h:1"],
    ],
)
def test_bench_refuses_ibverbs(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        bench.parse_args(argv, "spead2_bench")
    assert info.value.code == 2
    assert "this implementation has no ibverbs support" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["master", "--tcp", "h:1"], "unrecognized arguments: --tcp"),
        (["master", "--buffer=1", "h:1"], "unrecognized arguments: --buffer=1"),
        (["master", "--mem-pool", "h:1"], "unrecognized arguments: --mem-pool"),
        (["master", "7148"], "expected HOST:PORT"),
        (["master", "--log=DEBUG", "h:1"], "unrecognized arguments: --log=DEBUG"),
    ],
)
def test_bench_master_lacks_reference_absent_options(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(argv, "spead2_bench")
    assert message in capsys.readouterr().err


def test_bench_control_message_matches_reference_keys() -> None:
    args = bench.parse_args(["master", "--heap-size", "1000000", "127.0.0.1:22177"])
    master = bench.Master(args)
    message = bench._control_message(args, master.receiver)
    # Observed from the reference master (TOOLS.md §3.3).
    assert list(message) == ["cmd", "args", "protocol", "receiver"]
    assert list(message["args"]) == [
        "log", "quiet", "heap_size", "multicast", "pyspead", "addr_bits", "burst",
        "burst_rate_ratio", "max_heaps", "rate_method", "ttl", "send_buffer", "send_bind",
        "send_ibv", "send_ibv_vector", "send_ibv_max_poll", "send-affinity", "send-threads",
        "memcpy_nt", "concurrent_heaps", "substreams", "ring_heaps", "mem_max_free",
        "mem_initial", "packet", "recv_buffer", "recv_bind", "recv_ibv", "recv_ibv_vector",
        "recv_ibv_max_poll", "recv-affinity", "recv-threads", "endpoint",
    ]
    assert message["args"]["endpoint"] == "127.0.0.1:22177"
    assert message["args"]["rate_method"] == "AUTO"
    assert message["protocol"] == {"tcp": False, "pyspead": False}
    assert message["receiver"] == {
        "buffer": 8388608, "bind": None, "ibv": False, "ibv_vector": 0, "threads": 1,
        "affinity": None, "memcpy_nt": False, "concurrent_heaps": 4, "substreams": 1,
        "ring_heaps": 4, "mem_pool": True, "mem_lower": 1000000, "mem_upper": 1001024,
        "mem_max_free": 12, "mem_initial": 8, "packet": 9200, "ibv_max_poll": 10,
    }
    # ...and an agent reads it back into the same settings.
    settings = _settings.ReceiverSettings.from_json(message["receiver"], message["protocol"])
    assert settings.mem_pool and settings.mem_lower == 1000000 and settings.max_packet() == 9200


# -- the bench's search, with a stand-in for the network ---------------------------------


class FakeMaster(bench.Master):
    """A master whose passes are good exactly when the rate is at most ``limit`` bytes/s."""

    def __init__(self, args: argparse.Namespace, limit: float, send_speed: float) -> None:
        super().__init__(args)
        self.limit = limit
        self.send_speed = send_speed
        self.passes: list[tuple[float, int]] = []

    async def measure_once(self, rate: float, num_heaps: int, required_heaps: int) -> tuple[bool, float]:
        self.passes.append((rate, num_heaps))
        actual = self.send_speed if rate == 0 else min(rate, self.send_speed)
        return actual <= self.limit, actual


async def test_bench_search_finds_the_limit(capsys: pytest.CaptureFixture[str]) -> None:
    args = bench.parse_args(["master", "--heap-size", "1000000", "h:1"])
    master = FakeMaster(args, limit=5.3e9 / 8, send_speed=10e9 / 8)
    rate = await master.run()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Send rate: 10.000 Gbps"
    steps = [re.fullmatch(r"Rate: (\d+\.\d{3}) Gbps \((\d+\.\d{3}) actual\): (GOOD|BAD)", line) for line in out[1:]]
    assert all(steps) and len(steps) >= 5
    assert steps[0] is not None and steps[0][1] == "5.000" and steps[0][3] == "GOOD"
    assert 5.3e9 / 8 * 0.98 <= rate <= 5.3e9 / 8
    # 1 warm-up pass + 5 passes at full speed + 5 per step; heaps = 1e9 / heap_size + 2.
    assert len(master.passes) == 1 + 5 + 5 * len(steps)
    assert master.passes[0] == (0.0, 1002)


async def test_bench_search_limited_by_send_speed(capsys: pytest.CaptureFixture[str]) -> None:
    args = bench.parse_args(["master", "--heap-size", "1000000", "--passes", "2", "h:1"])
    master = FakeMaster(args, limit=1e12, send_speed=3e9 / 8)
    assert await master.run() == 3e9 / 8
    assert capsys.readouterr().out == "Limited by send speed\n"
    assert len(master.passes) == 1 + 2


async def test_bench_quiet_still_prints_send_rate(capsys: pytest.CaptureFixture[str]) -> None:
    args = bench.parse_args(["master", "--quiet", "--precision", "0.3", "h:1"])
    master = FakeMaster(args, limit=2e9 / 8, send_speed=8e9 / 8)
    await master.run()
    assert capsys.readouterr().out == "Send rate: 8.000 Gbps\n"


# -- send → recv over loopback ------------------------------------------------------


def test_send_recv_udp_values_and_descriptors() -> None:
    port = free_port()
    receiver = start(tool_command("recv", "--values", "--descriptors", f"127.0.0.1:{port}"))
    try:
        wait_bound(receiver, port)
        sent = run(tool_command(
            "send", "--heaps", "3", "--heap-size", "64", "--items", "2", "--dtype", "<u2",
            f"127.0.0.1:{port}",
        ))
        out, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert sent.returncode == 0, sent.stderr
    match = SENT_RE.match(sent.stdout.strip())
    assert match and match[1] == "819"  # the reference's count for the same heaps
    assert receiver.returncode == 0, err
    name = f"127.0.0.1:{port}"
    expected = [
        f"Received heap 1 on stream {name}",
        DESCRIPTOR_BLOCK.format(i=0),
        DESCRIPTOR_BLOCK.format(i=1),
        f"Test item 0 = {ZEROS}",
        f"Test item 1 = {ZEROS}",
    ]
    for cnt in (2, 3):
        expected += [f"Received heap {cnt} on stream {name}", f"Test item 0 = {ZEROS}",
                     f"Test item 1 = {ZEROS}"]
    expected.append(f"Shutting down stream {name} after 3 heaps")
    assert out.startswith("\n".join(expected) + "\n")
    stats = stats_of(out, name)
    assert list(stats)[: len(CORE_STATS)] == CORE_STATS
    assert stats["heaps"] == 3 and stats["packets"] == 4 and stats["single_packet_heaps"] == 4


def test_send_recv_tcp() -> None:
    port = free_port(socket.SOCK_STREAM)
    receiver = start(tool_command("recv", "--tcp", "--values", f"127.0.0.1:{port}"))
    try:
        wait_bound(receiver, port, socket.SOCK_STREAM)
        sent = run(tool_command(
            "send", "--tcp", "--heaps", "2", "--heap-size", "16", "--dtype", ">i4",
            "--packet", "9000", f"127.0.0.1:{port}",
        ))
        out, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert sent.returncode == 0, sent.stderr
    match = SENT_RE.match(sent.stdout.strip())
    assert match and match[1] == "385"
    assert receiver.returncode == 0, err
    name = f"127.0.0.1:{port}"
    assert out.splitlines()[:5] == [
        f"Received heap 1 on stream {name}", "Test item 0 = [0 0 0 0]",
        f"Received heap 2 on stream {name}", "Test item 0 = [0 0 0 0]",
        f"Shutting down stream {name} after 2 heaps",
    ]


def test_send_tcp_connection_refused() -> None:
    port = free_port(socket.SOCK_STREAM)
    result = run(tool_command("send", "--tcp", "--heaps", "1", f"127.0.0.1:{port}"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"spead2_send: error: cannot connect to 127.0.0.1:{port}: Connection refused"
    )
    assert "Traceback" not in result.stderr


def test_send_library_errors_are_clean() -> None:
    result = run(tool_command("send", "--heaps", "1", "--ttl", "2", "127.0.0.1:9"))
    assert result.returncode == 1
    assert result.stderr.strip().endswith("endpoint is not a multicast address: '127.0.0.1'")
    assert "Traceback" not in result.stderr


def test_substreams_each_get_a_stop_heap() -> None:
    ports = free_ports(2)
    names = [f"127.0.0.1:{port}" for port in ports]
    receiver = start(tool_command("recv", *names))
    try:
        for port in ports:
            wait_bound(receiver, port)
        sent = run(tool_command("send", "--heaps", "2", "--heap-size", "32", "--dtype", "u1", *names))
        out, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert sent.returncode == 0, sent.stderr
    assert SENT_RE.match(sent.stdout.strip())[1] == "676"  # type: ignore[index]
    assert receiver.returncode == 0, err
    lines = out.splitlines()
    assert f"Received heap 1 on stream {names[0]}" in lines
    assert f"Received heap 2 on stream {names[1]}" in lines
    for name in names:
        assert f"Shutting down stream {name} after 1 heaps" in lines
        assert stats_of(out, name)["packets"] == 2


def test_joint_stream_ends_at_first_stop() -> None:
    ports = free_ports(2)
    names = [f"127.0.0.1:{port}" for port in ports]
    receiver = start(tool_command("recv", "--joint", *names))
    try:
        for port in ports:
            wait_bound(receiver, port)
        sent = run(tool_command("send", "--heaps", "3", "--heap-size", "32", "--dtype", "u1",
                                "--rate", "0.001", *names))
        out, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert sent.returncode == 0, sent.stderr
    assert receiver.returncode == 0, err
    received = [int(m[1]) for m in re.finditer(r"^Received heap (\d+) on stream (\S+)$", out, re.M)]
    # Heaps 1 and 3 go to the first source, 2 and the first stop heap (4) to
    # the second: normally all three data heaps arrive before that stop heap,
    # but the two sockets are read independently, so only require most.
    assert set(received) <= {1, 2, 3} and len(set(received)) == len(received) >= 2
    assert f"on stream {names[1]}" not in out  # one stream, named after the first source
    assert f"Shutting down stream {names[0]} after {len(received)} heaps" in out


def test_max_heaps_stops_early_and_summarises() -> None:
    port = free_port()
    receiver = start(tool_command("recv", "--max-heaps", "2", str(port)))
    try:
        wait_bound(receiver, port)
        sent = run(tool_command("send", "--heaps", "5", "--heap-size", "32", "--dtype", "u1",
                                "--rate", "0.001", f"127.0.0.1:{port}"))
        out, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert sent.returncode == 0, sent.stderr
    assert receiver.returncode == 0, err
    assert len(re.findall(r"^Received heap", out, re.M)) == 2
    assert f"Shutting down stream {port} after 2 heaps" in out
    assert stats_of(out, str(port))["heaps"] >= 2


def test_recv_threads_and_memory_pool() -> None:
    ports = free_ports(2)
    names = [f"127.0.0.1:{port}" for port in ports]
    receiver = start(tool_command("recv", "--threads", "2", "--mem-pool", "--mem-upper", "65536",
                                  "--values", *names))
    try:
        for port in ports:
            wait_bound(receiver, port)
        sent = run(tool_command("send", "--heaps", "4", "--heap-size", "4000", "--dtype", "u1",
                                "--items", "2", *names))
        out, err = finish(receiver)
    finally:
        stop_process(receiver)
    assert sent.returncode == 0, sent.stderr
    assert receiver.returncode == 0, err
    for name in names:
        assert f"Shutting down stream {name} after 2 heaps" in out
    assert len(re.findall(r"^Test item 1 = \[0 0 0 ", out, re.M)) == 4


def test_sigint_with_nothing_received_prints_summary() -> None:
    port = free_port()
    receiver = start(tool_command("recv", f"127.0.0.1:{port}"))
    try:
        wait_bound(receiver, port)
        out, err = interrupt(receiver)
    finally:
        stop_process(receiver)
    assert receiver.returncode == 0, err
    assert out.splitlines()[0] == f"Shutting down stream 127.0.0.1:{port} after 0 heaps"
    stats = stats_of(out, f"127.0.0.1:{port}")
    assert list(stats)[: len(CORE_STATS)] == CORE_STATS
    assert set(stats.values()) == {0}
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_sigint_stops_every_stream_after_heaps() -> None:
    ports = free_ports(2)
    names = [f"127.0.0.1:{port}" for port in ports]
    receiver = start(tool_command("recv", *names))
    try:
        for port in ports:
            wait_bound(receiver, port)
        # Endless (no --heaps): no stop heaps, so only Ctrl-C ends the streams.
        sender = start(tool_command("send", "--heap-size", "32",
                                    "--dtype", "u1", "--rate", "0.0005", names[0]))
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            # Wait for some output from the receiver (it is unbuffered).
            assert receiver.stdout is not None
            ready, _, _ = select.select([receiver.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "receiver printed nothing"
        finally:
            sender.send_signal(signal.SIGINT)
            sender_out, _ = finish(sender)
        out, err = interrupt(receiver)
    finally:
        stop_process(receiver)
    # Ctrl-C is a request to stop: status 0 and a report of what was sent.
    assert sender.returncode == 0 and SENT_RE.match(sender_out.strip())
    assert receiver.returncode == 0, err
    assert re.search(rf"^Shutting down stream {re.escape(names[0])} after [1-9]\d* heaps$", out, re.M)
    assert f"Shutting down stream {names[1]} after 0 heaps" in out
    assert out.count("worker_blocked: ") == 2


def test_recv_pcap_source(tmp_path: Path) -> None:
    # Packets of a real stream (two data heaps and a stop heap), framed as a capture.
    stream = spead2.send.BytesStream(spead2.ThreadPool())
    group = spead2.send.ItemGroup()
    group.add_item(0x1600, "timestamp", "Sample counter", (), format=[("u", 40)], value=12345)
    group.add_item(0x1602, "samples", "Raw samples", (3,), dtype=">i2", value=[1, -2, 300])
    stream.send_heap(group.get_heap())
    group["timestamp"].value = 12346
    stream.send_heap(group.get_heap())
    stream.send_heap(group.get_end())
    path = tmp_path / "t1.pcap"
    write_capture(path, packets_of(stream.getvalue()))
    result = run(tool_command("recv", "--values", "--descriptors", str(path)))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:13] == [
        f"Received heap 1 on stream {path}",
        "    Descriptor for timestamp (0x1600)",
        "      description: Sample counter",
        "      format:      [('u', 40)]",
        "      dtype:       None",
        "      shape:       ()",
        "    Descriptor for samples (0x1602)",
        "      description: Raw samples",
        "      format:      None",
        "      dtype:       >i2",
        "      shape:       (3,)",
        "samples = [  1  -2 300]",
        "timestamp = 12345",
    ]
    assert lines[13:16] == [f"Received heap 2 on stream {path}", "timestamp = 12346",
                            f"Shutting down stream {path} after 2 heaps"]


def packets_of(data: bytes) -> list[bytes]:
    """Split back-to-back SPEAD packets (as BytesStream writes them)."""
    packets = []
    offset = 0
    while offset < len(data):
        n_items = struct.unpack_from(">H", data, offset + 6)[0]
        length = 8 + 8 * n_items
        for i in range(n_items):
            (pointer,) = struct.unpack_from(">Q", data, offset + 8 + 8 * i)
            if (pointer >> 40) & 0x7FFFFF == 4:  # PAYLOAD_LENGTH (immediate)
                length += pointer & (2**40 - 1)
        packets.append(data[offset : offset + length])
        offset += length
    return packets


def write_capture(path: Path, packets: list[bytes]) -> None:
    builder = FrameBuilder()
    with open(path, "wb") as f:
        f.write(file_header())
        for i, packet in enumerate(packets):
            f.write(builder.headers(("10.0.0.1", 5000), ("10.0.0.2", 7148), packet, i * 1000))
            f.write(packet)


# -- the live progress line ---------------------------------------------------------


def test_progress_line_on_a_terminal() -> None:
    port = free_port()
    receiver = TerminalProcess(tool_command("recv", f"127.0.0.1:{port}"))
    try:
        wait_bound(receiver.proc, port)
        sent = run(tool_command("send", "--heaps", "10", "--heap-size", "10000", "--rate", "0.002",
                                f"127.0.0.1:{port}"))
        assert sent.returncode == 0, sent.stderr
        text, err = receiver.finish()
    finally:
        receiver.close()
    assert receiver.proc.returncode == 0, err
    assert re.search(
        r"heaps: \d+  bytes: [\d.]+ [kMG]?B  rate: \d+\.\d{3} Gb/s  elapsed: [\d.]+ s  "
        r"incomplete heaps: 0  dropped packets: 0",
        text,
    )
    final = text.rfind("heaps: 10  bytes:")  # the final state stays on screen...
    shutdown = text.find(f"Shutting down stream 127.0.0.1:{port} after 10 heaps")
    assert 0 <= final < shutdown  # ...above the statistics


def test_plain_output_has_no_progress_line() -> None:
    port = free_port()
    receiver = start(tool_command("recv", f"127.0.0.1:{port}"))
    try:
        wait_bound(receiver, port)
        run(tool_command("send", "--heaps", "2", "--heap-size", "64", f"127.0.0.1:{port}"))
        out, _ = finish(receiver)
    finally:
        stop_process(receiver)
    assert "\x1b" not in out and "Gb/s" not in out


class FakeStats(dict[str, int]):
    pass


class FakeStream:
    def __init__(self, **stats: int) -> None:
        self.stats = FakeStats(
            incomplete_heaps_evicted=stats.get("evicted", 0),
            incomplete_heaps_flushed=stats.get("flushed", 0),
            invalid_packets=stats.get("invalid", 0),
        )


def test_progress_counts_and_rate() -> None:
    now = [100.0]
    drops = [5]
    streams = [FakeStream(evicted=1, invalid=2), FakeStream(flushed=3)]
    progress = _progress.Progress(
        streams, [7148], clock=lambda: now[0], drops=lambda ports: drops[0]  # type: ignore[arg-type]
    )
    stream = spead2.recv.Stream(spead2.ThreadPool())
    heap_bytes = spead2.send.BytesStream(spead2.ThreadPool())
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (1000,), dtype=np.uint8, value=np.zeros(1000, np.uint8))
    heap_bytes.send_heap(group.get_heap(data="all"))
    heap_bytes.send_heap(group.get_heap(data="all"))
    stream.add_buffer_reader(heap_bytes.getvalue())
    for heap in stream:
        progress.add_heap(heap)
    assert progress.heaps == 2
    assert 2000 < progress.bytes < 2400  # two payloads of 1000 bytes, plus a descriptor
    now[0] = 101.0
    drops[0] = 9  # four more since the progress started
    line = progress.line()
    expected_rate = progress.bytes * 8 / 1e9
    assert line == (
        f"heaps: 2  bytes: {progress.bytes / 1000:.2f} kB  rate: {expected_rate:.3f} Gb/s  "
        f"elapsed: 1.0 s  incomplete heaps: 4  dropped packets: {2 + 4}"
    )


def test_udp_kernel_drops_reads_proc_net_udp(tmp_path: Path) -> None:
    header = ("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode ref pointer drops\n")
    lines = [
        "  1: 0100007F:1BEC 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 111 2 0 7\n",
        "  2: 00000000:1BED 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 222 2 0 5\n",
        "  3: 00000000:0050 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 333 2 0 1\n",
    ]
    path = tmp_path / "udp"
    path.write_text(header + "".join(lines))
    assert _progress.udp_kernel_drops([0x1BEC], paths=[str(path)]) == 7
    assert _progress.udp_kernel_drops([0x1BEC, 0x1BED], paths=[str(path)]) == 12
    assert _progress.udp_kernel_drops(inodes=[333], paths=[str(path)]) == 1
    assert _progress.udp_kernel_drops([1], paths=[str(tmp_path / "missing")]) is None


# -- the capture tool ---------------------------------------------------------------


def test_capture_then_read_back(tmp_path: Path) -> None:
    ports = free_ports(2)
    path = tmp_path / "capture.pcap"
    # 3 data heaps of 64 bytes + 1 stop heap to the first port: 4 packets; 2
    # heaps + stop to a wildcard-bound second port: 3 more.
    capturer = start(tool_command("capture", "--count", "7", str(path),
                                  f"127.0.0.1:{ports[0]}", str(ports[1])))
    try:
        for port in ports:
            wait_bound(capturer, port)
        for port, heaps in ((ports[0], 3), (ports[1], 2)):
            sent = run(tool_command("send", "--heaps", str(heaps), "--heap-size", "64", "--items",
                                    "2", "--dtype", "<u2", f"127.0.0.1:{port}"))
            assert sent.returncode == 0, sent.stderr
        out, err = finish(capturer)
    finally:
        stop_process(capturer)
    assert capturer.returncode == 0, err
    assert "packets: 7" in out.splitlines()
    assert "dropped_by_writer: 0" in out.splitlines()

    stream = spead2.recv.Stream(spead2.ThreadPool(), spead2.recv.StreamConfig(max_heaps=4))
    stream.add_udp_pcap_file_reader(str(path), f"udp dst port {ports[0]}")
    group = spead2.ItemGroup()
    cnts = []
    for heap in stream:
        updated = group.update(heap)
        assert np.array_equal(updated["Test item 1"].value, np.zeros(16, np.uint16))
        cnts.append(heap.cnt)
    assert cnts == [1, 2, 3]
    assert stream.stats["packets"] == 4  # the stop heap's packet ended the stream

    stream = spead2.recv.Stream(spead2.ThreadPool())
    stream.add_udp_pcap_file_reader(str(path), f"udp dst port {ports[1]} and dst host 127.0.0.1")
    assert [heap.cnt for heap in stream] == [1, 2]

    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump is not installed: file checked with add_udp_pcap_file_reader only")
    result = subprocess.run([tcpdump, "-nn", "-vv", "-r", str(path)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if " > " in line]
    assert len(lines) == 7
    assert sum(f"127.0.0.1.{ports[0]}: " in line for line in lines) == 4
    assert sum(f"127.0.0.1.{ports[1]}: " in line for line in lines) == 3
    assert "bad" not in result.stdout.lower()


def test_capture_sigint_prints_statistics(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "empty.pcap"
    capturer = start(tool_command("capture", str(path), str(port)))
    try:
        wait_bound(capturer, port)
        out, err = interrupt(capturer)
    finally:
        stop_process(capturer)
    assert capturer.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Captured 0 datagrams (0 bytes of payload) in ")
    assert lines[1:] == ["packets: 0", "bytes: 0", "dropped_by_kernel: 0", "dropped_by_writer: 0"]
    assert path.read_bytes() == file_header()


def test_capture_writer_backlog_drops_are_counted(tmp_path: Path) -> None:
    class SlowFile:
        def __init__(self) -> None:
            self.release = __import__("threading").Event()
            self.written: list[bytes] = []

        def writelines(self, chunks: list[bytes]) -> None:
            self.release.wait(10)
            self.written.extend(chunks)

        def close(self) -> None:
            pass

    file = SlowFile()
    writer = capture.FileWriter(file, max_backlog=100)  # type: ignore[arg-type]
    assert writer.write([b"x" * 60], 60)
    assert not writer.write([b"y" * 60], 60)  # would exceed the backlog: refused, not blocked
    file.release.set()

    async def close() -> None:
        await writer.close()

    import asyncio

    asyncio.run(close())
    assert file.written == [b"x" * 60]


def test_capture_refuses_bad_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        capture.parse_args(["out.pcap", "host:notaport"], "spead2_capture")
    assert info.value.code == 2
    assert "expected PORT, HOST:PORT or [IPV6]:PORT, got 'host:notaport'" in capsys.readouterr().err
    assert _arguments.parse_listen_endpoint("[::1]:7148") == ("::1", 7148)
    assert _arguments.parse_listen_endpoint("7148") == ("", 7148)


# -- the bench, for real over loopback ----------------------------------------------------


def test_bench_agent_and_master() -> None:
    port = free_port()
    agent = start(tool_command("bench", "--log", "ERROR", "agent", str(port)))
    try:
        wait_bound(agent, port, socket.SOCK_STREAM, "0.0.0.0")
        # A tiny search budget: ~40 heaps of 64 KiB per pass, one pass per
        # measurement, a coarse precision.
        result = run(tool_command(
            "bench", "master", "--heap-size", "65536", "--pass-bytes", "2.5e6", "--passes", "1",
            "--precision", "0.3", "--recv-buffer", "262144", f"127.0.0.1:{port}",
        ))
        out, err = interrupt(agent)
    finally:
        stop_process(agent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Limited by send speed" or re.fullmatch(r"Send rate: \d+\.\d{3} Gbps", lines[0])
    for line in lines[1:-1]:
        assert re.fullmatch(r"Rate: \d+\.\d{3} Gbps \(\d+\.\d{3} actual\): (GOOD|BAD)", line)
    final = re.fullmatch(r"Sustainable rate: (\d+\.\d{3}) Gbps", lines[-1])
    assert final, result.stdout
    if lines[0] == "Limited by send speed" or "GOOD" in result.stdout:
        assert float(final[1]) > 0
    assert agent.returncode == 0, err
    assert out == ""  # the agent prints nothing on stdout


def test_bench_master_without_agent_fails_cleanly() -> None:
    port = free_port(socket.SOCK_STREAM)
    result = run(tool_command("bench", "master", "--passes", "1", f"127.0.0.1:{port}"))
    assert result.returncode == 1
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


# -- entry points ------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["send", "recv", "bench", "capture"])
def test_help(tool: str) -> None:
    result = run(tool_command(tool, "--help"))
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: spead2_{tool} ")


def test_prog_name_follows_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/bin/spead2_send.py"])
    assert _cli.prog_name("spead2_send") == "spead2_send.py"
    monkeypatch.setattr(sys, "argv", ["/x/spead2/tools/send.py"])
    assert _cli.prog_name("spead2_send") == "spead2_send"
