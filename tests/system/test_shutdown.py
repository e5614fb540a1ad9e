"""Shutdown: Ctrl-C, interpreter exit, stop() under traffic, dropped streams, send streams cut off.

Interpreter-level behaviour (Ctrl-C, exit with live objects) runs in
subprocesses with timeouts: a hang fails the test instead of the suite, and
stderr must hold no traceback other than the expected KeyboardInterrupt.

Send streams have no ``close()``/``stop()`` (nor does the reference's API);
what ends them with heaps in flight is the loop shutting down (their futures
are cancelled) or the connection failing (their futures fail with the
``OSError``). Both are tested here.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import spead2
import spead2.recv
import spead2.recv.asyncio
import spead2.send
import spead2.send.asyncio
from spead2.protocols.heaps import Heap
from spead2.transports.base import BATCH_PACKETS
from spead2.transports.udp import DATAGRAMS_PER_CALL
from tests.fuzz._udp import bound_udp_socket, kernel_drops
from tests.helpers.waiting import wait_for, wait_for_async

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def run_script(
    body: str, *, interrupt_after_ready: bool = False, args: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``body`` with our package importable; optionally SIGINT it once it prints 'ready'."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(body), *(args or [])],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if interrupt_after_ready:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")
            # Give the main thread time to enter the blocking call.
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the interpreter hung (killed after {TIMEOUT} s)\nstdout: {out}\nstderr: {err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_clean(err: str) -> None:
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "Error" not in err, err


# -- Ctrl-C during a blocking get() ----------------------------------------------------


RECEIVER = """
    import socket, sys
    import spead2, spead2.recv
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stream = spead2.recv.Stream(spead2.ThreadPool())
    stream.add_udp_reader(sock)
"""


@pytest.mark.timeout(60)
def test_ctrl_c_interrupts_blocking_get() -> None:
    result = run_script(
        RECEIVER
        + """
    print("ready", flush=True)
    try:
        stream.get()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    stream.stop()
    """,
        interrupt_after_ready=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "interrupted"
    assert_clean(result.stderr)


@pytest.mark.timeout(60)
def test_ctrl_c_uncaught_in_iteration_exits_like_python() -> None:
    result = run_script(
        RECEIVER
        + """
    print("ready", flush=True)
    for heap in stream:
        pass
    """,
        interrupt_after_ready=True,
    )
    # Python's own exit for an uncaught KeyboardInterrupt: killed by SIGINT after the traceback.
    assert result.returncode in (-signal.SIGINT, 128 + signal.SIGINT, 1), result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "KeyboardInterrupt", result.stderr
    assert "Exception ignored" not in result.stderr
    assert sum("Traceback" in line for line in lines) == 1, result.stderr


@pytest.mark.timeout(60)
def test_ctrl_c_during_asyncio_get() -> None:
    result = run_script(
        """
    import asyncio, socket
    import spead2, spead2.recv.asyncio

    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())
        stream.add_udp_reader(sock)
        print("ready", flush=True)
        try:
            await stream.get()
        finally:
            stream.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """,
        interrupt_after_ready=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "interrupted"
    assert_clean(result.stderr)


# -- interpreter exit with live streams, pools and send streams -----------------------------


@pytest.mark.timeout(60)
def test_exit_with_everything_live() -> None:
    result = run_script(
        """
    import asyncio, socket, threading, time
    import numpy as np
    import spead2, spead2.recv, spead2.recv.asyncio, spead2.send, spead2.send.asyncio

    pool = spead2.ThreadPool(2)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    listener = socket.create_server(("127.0.0.1", 0))
    queue = spead2.InprocQueue()

    stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(max_heaps=2),
                                spead2.recv.RingStreamConfig(heaps=2))
    stream.add_udp_reader(rx)
    stream.add_tcp_reader(listener)
    stream.add_inproc_reader(queue)
    other = spead2.recv.asyncio.Stream(spead2.ThreadPool())
    other.add_inproc_reader(spead2.InprocQueue())
    memory = spead2.MemoryPool(pool, 1024, 8192, 8, 4, 2)
    memory_plain = spead2.MemoryPool(1024, 8192, 8, 4)

    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (4096,), dtype="u1", value=np.zeros(4096, np.uint8))
    heap = group.get_heap()
    bytes_stream = spead2.send.BytesStream(pool)
    bytes_stream.send_heap(heap)
    inproc_send = spead2.send.InprocStream(pool, [queue])
    inproc_send.send_heap(heap)
    try:
        from spead2.send import TcpStream, UdpStream
    except ImportError:  # not exported yet: the module that defines them
        from spead2.send._network_streams import TcpStream, UdpStream
    udp_send = UdpStream(pool, [("127.0.0.1", port)])
    udp_send.send_heap(heap)
    tcp_send = TcpStream(pool, [listener.getsockname()])  # the stream's TCP reader accepts it
    tcp_send.send_heap(heap)

    async def leave_heaps_in_flight():
        global async_stream, futures, loop_stream
        # A receive stream on this loop, kept alive after the loop closes.
        loop_stream = spead2.recv.asyncio.Stream(pool)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        loop_stream.add_udp_reader(sock)
        config = spead2.send.StreamConfig(rate=1e5)  # slow: heaps stay queued
        async_stream = spead2.send.asyncio.InprocStream(pool, [spead2.InprocQueue()], config)
        futures = [async_stream.async_send_heap(heap) for _ in range(3)]
        await asyncio.sleep(0.01)  # the scenario: the loop ends with heaps in flight
    asyncio.run(leave_heaps_in_flight())

    # Traffic still flowing when the interpreter exits.
    def flood():
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        packets = list(spead2.send.PacketGenerator(heap, 1, 1472))
        while True:
            for p in packets:
                tx.sendto(p, ("127.0.0.1", port))
    threading.Thread(target=flood, daemon=True).start()
    time.sleep(0.3)  # the scenario: the interpreter exits while traffic flows
    # The loop shut down with heaps queued: their futures were cancelled, not left pending.
    assert all(f.cancelled() or f.done() for f in futures), futures
    print("exiting", flush=True)
    """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exiting"
    assert_clean(result.stderr)


@pytest.mark.timeout(60)
def test_exit_while_a_thread_is_blocked_in_get() -> None:
    result = run_script(
        RECEIVER
        + """
    import threading
    # At exit the stream is stopped, which ends the iteration (a bare get() would raise
    # spead2.Stopped in that thread, as after any stop()).
    threading.Thread(target=lambda: [None for _ in stream], daemon=True).start()
    import time; time.sleep(0.2)  # the scenario: exit while that thread waits in get()
    print("exiting", flush=True)
    """
    )
    assert result.returncode == 0, result.stderr
    assert_clean(result.stderr)


# -- stop() during traffic, from another thread ------------------------------------------------


def _heap_packets(n_heaps: int) -> list[list[bytes]]:
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (3000,), dtype="u1")
    result = []
    for cnt in range(1, n_heaps + 1):
        group["x"].value = np.full(3000, cnt % 256, np.uint8)
        result.append(list(spead2.send.PacketGenerator(group.get_heap(descriptors="all"), cnt, 1472)))
    return result


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_stop_during_traffic_from_another_thread(transport: str) -> None:
    heaps = _heap_packets(64)
    stream = spead2.recv.Stream(spead2.ThreadPool(), spead2.recv.StreamConfig(max_heaps=4))
    stop_sending = threading.Event()
    if transport == "udp":
        rx = bound_udp_socket()
        port = rx.getsockname()[1]
        stream.add_udp_reader(rx)
        rx.close()

        def send() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                while not stop_sending.is_set():
                    for packets in heaps:
                        for p in packets:
                            tx.sendto(p, ("127.0.0.1", port))
    else:
        listener = socket.create_server(("127.0.0.1", 0))
        stream.add_tcp_reader(listener)
        listener_address = listener.getsockname()

        def send() -> None:
            with socket.create_connection(listener_address) as conn:
                data = b"".join(p for packets in heaps for p in packets)
                try:
                    while not stop_sending.is_set():
                        conn.sendall(data)
                except OSError:
                    pass  # the receiver closed the connection: expected

    consumed: list[Heap] = []
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            group = spead2.ItemGroup()
            for heap in stream:
                assert isinstance(heap, Heap)  # contiguous_only: incomplete heaps are dropped
                value = group.update(heap)["x"].value
                assert np.all(value == heap.cnt % 256), heap.cnt
                consumed.append(heap)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    consumer = threading.Thread(target=consume)
    sender.start()
    consumer.start()
    wait_for(lambda: len(consumed) >= 50 or errors, "50 heaps consumed", timeout=20)
    # Two threads stop at once: idempotent, and both return.
    stoppers = [threading.Thread(target=stream.stop) for _ in range(2)]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(10)
        assert not t.is_alive(), "stop() hung"
    consumer.join(10)
    stop_sending.set()
    sender.join(10)
    assert not consumer.is_alive(), "the consumer was not released by stop()"
    assert not errors, errors
    assert len(consumed) >= 50
    stats = stream.stats
    # Every heap counted was delivered, dropped as incomplete (contiguous_only),
    # or held by the reader at the full ring when stop() dropped it (one batch at most).
    undelivered = stats.heaps - (
        len(consumed) + stats.incomplete_heaps_evicted + stats.incomplete_heaps_flushed
    )
    assert 0 <= undelivered <= (DATAGRAMS_PER_CALL if transport == "udp" else BATCH_PACKETS)
    if transport == "tcp":
        listener.close()


# -- a stream dropped without stop() ---------------------------------------------------------


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.timeout(60)
def test_dropped_stream_releases_its_sockets() -> None:
    pool = spead2.ThreadPool()
    gc.collect()
    before = _open_fds()
    rx = bound_udp_socket()
    port = rx.getsockname()[1]
    listener = socket.create_server(("127.0.0.1", 0))
    stream = spead2.recv.Stream(pool)
    stream.add_udp_reader(rx)
    stream.add_tcp_reader(listener)
    stream.add_inproc_reader(spead2.InprocQueue())
    rx.close()
    listener.close()
    assert kernel_drops(port) is not None  # the stream's duplicate is still bound
    del stream
    gc.collect()
    wait_for(
        lambda: _open_fds() <= before and kernel_drops(port) is None, "the dropped stream's sockets to close"
    )
    assert kernel_drops(port) is None, "the dropped stream still holds its UDP socket"
    assert _open_fds() <= before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_dropped_stream_closes_its_fd_pipe() -> None:
    pool = spead2.ThreadPool()
    gc.collect()
    before = _open_fds()
    for _ in range(5):
        stream = spead2.recv.Stream(pool)
        assert stream.fd >= 0
        stream.stop()
        del stream
    gc.collect()
    assert _open_fds() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
async def test_dropped_asyncio_stream_on_a_running_loop_releases_its_socket() -> None:
    rx = bound_udp_socket()
    port = rx.getsockname()[1]
    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())
    stream.add_udp_reader(rx)
    rx.close()
    del stream
    gc.collect()
    await wait_for_async(lambda: kernel_drops(port) is None, "the UDP socket to close")
    assert kernel_drops(port) is None


# -- send streams cut off with heaps in flight ------------------------------------------------


def _big_heap(size: int = 1 << 20) -> spead2.send.Heap:
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (size,), dtype="u1", value=np.zeros(size, np.uint8))
    return group.get_heap()


async def test_tcp_send_stream_peer_reset_fails_queued_futures() -> None:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    config = spead2.send.StreamConfig(max_packet_size=8192, max_heaps=8, rate=20e6)
    stream = await spead2.send.asyncio.TcpStream.connect(
        spead2.ThreadPool(), [listener.getsockname()], config
    )
    conn, _ = await loop.sock_accept(listener)
    heap = _big_heap()
    futures = [stream.async_send_heap(heap) for _ in range(6)]
    # Let some bytes through, then reset the connection (RST, not a clean close).
    conn.setblocking(False)
    await loop.sock_recv(conn, 65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    listener.close()
    results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 20)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures, "no heap failed although the connection was reset mid-way"
    for failure in failures:
        assert isinstance(failure, OSError), repr(failure)
        assert isinstance(failure, (ConnectionError, BrokenPipeError)) or failure.errno, failure
    # Heaps that had failed are followed only by failures: nothing is sent after a reset.
    first = next(i for i, r in enumerate(results) if isinstance(r, BaseException))
    assert all(isinstance(r, BaseException) for r in results[first:]), results


def test_loop_shutdown_cancels_queued_heap_futures() -> None:
    heap = _big_heap(1 << 16)
    futures: list[asyncio.Future[int]] = []

    async def queue_and_leave() -> None:
        config = spead2.send.StreamConfig(rate=1e5, max_heaps=4)
        stream = spead2.send.asyncio.InprocStream(spead2.ThreadPool(), [spead2.InprocQueue()], config)
        futures.extend(stream.async_send_heap(heap) for _ in range(4))
        await asyncio.sleep(0.01)  # the scenario: the loop ends with heaps queued

    asyncio.run(queue_and_leave())
    # asyncio.run cancelled the stream's driver task; nothing can send these heaps any more.
    assert all(f.done() for f in futures)
    assert all(f.cancelled() for f in futures[1:]), futures
    with pytest.raises(asyncio.CancelledError):
        futures[-1].result()


def test_send_streams_have_no_close() -> None:
    """Documents the API gap issue #7 asks about (the reference has no close either)."""
    for cls in (spead2.send.asyncio.InprocStream, spead2.send.asyncio.TcpStream,
                spead2.send.BytesStream, spead2.send.InprocStream):
        assert not hasattr(cls, "close") and not hasattr(cls, "stop"), cls


@pytest.mark.timeout(60)
def test_exit_with_received_large_heaps_and_values_alive() -> None:
    """Heaps whose buffers the stream would recycle die during interpreter exit: no noise."""
    result = run_script(
        """
    import numpy as np
    import spead2, spead2.recv, spead2.send

    pool = spead2.ThreadPool()
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (1 << 18,), dtype="u1", value=np.ones(1 << 18, np.uint8))
    out = spead2.send.BytesStream(pool)
    for _ in range(8):
        out.send_heap(group.get_heap())
    stream = spead2.recv.Stream(pool)
    stream.add_buffer_reader(out.getvalue())
    received = spead2.ItemGroup()
    heaps = list(stream)
    values = []
    for heap in heaps[:4]:
        received.update(heap)
        values.append(received["x"].value)  # a view into the heap's buffer
    del heap
    heaps = heaps[::2]  # the others die now and give their buffers back
    assert all(int(v.sum()) == 1 << 18 for v in values)
    print("exiting", flush=True)
    """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "exiting"
    assert_clean(result.stderr)



# -- a stream that outlives its event loop ------------------------------------------------


async def _connected_tcp_stream() -> tuple[spead2.recv.asyncio.Stream, socket.socket]:
    """An asyncio stream on the running loop whose TCP reader has accepted a connection."""
    stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())
    listener = socket.create_server(("127.0.0.1", 0))
    address = listener.getsockname()
    stream.add_tcp_reader(listener)
    listener.close()
    client = socket.create_connection(address)
    # Accepted once the listening socket is gone (one connection per reader).
    await wait_for_async(lambda: not _listening_on(address), "the TCP reader to accept the connection", timeout=TIMEOUT)
    return stream, client


def _listening_on(address: tuple[str, int]) -> bool:
    probe = socket.socket()
    try:
        probe.connect(address)
    except ConnectionRefusedError:
        return False
    finally:
        probe.close()
    return True


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_stop_after_the_loop_closed_releases_every_reader_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """stop() on a stream whose asyncio.run has returned: no error logged, nothing left open."""
    async def make() -> tuple[spead2.recv.asyncio.Stream, socket.socket]:
        stream, client = await _connected_tcp_stream()
        # Every other kind of reader on the same stream, before the loop ends.
        stream.add_udp_reader(0, bind_hostname="127.0.0.1")
        stream.add_tcp_reader(0, bind_hostname="127.0.0.1")
        stream.add_inproc_reader(spead2.InprocQueue())
        return stream, client

    gc.collect()
    before = _open_sockets()
    stream, client = asyncio.run(make())
    assert _open_sockets() >= before + 4
    caplog.set_level(logging.WARNING, logger="spead2")
    caplog.clear()
    stream.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    # The peer sees the end of the connection at once, not at garbage collection.
    client.settimeout(TIMEOUT)
    assert client.recv(1) == b""
    client.close()
    assert _open_sockets() <= before


def _open_sockets() -> int:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return sum(link.startswith("socket:") for link in links)


@pytest.mark.timeout(120)
def test_asyncio_run_ending_by_an_exception_with_a_live_tcp_reader_exits_quietly() -> None:
    for _ in range(3):  # it used to print a traceback every time
        result = run_script(
            """
        import asyncio, socket, time
        import spead2, spead2.recv.asyncio

        async def main():
            global stream, client
            stream = spead2.recv.asyncio.Stream(spead2.ThreadPool())
            listener = socket.create_server(("127.0.0.1", 0))
            stream.add_tcp_reader(listener)
            client = socket.create_connection(listener.getsockname())
            listener.close()
            await asyncio.sleep(0.05)  # the scenario: the error comes while the reader runs
            raise ValueError("the user's own error")

        asyncio.run(main())
        """
        )
        assert result.returncode == 1
        tracebacks = result.stderr.count("Traceback")
        assert tracebacks == 1 and result.stderr.rstrip().endswith(
            "ValueError: the user's own error"
        ), result.stderr
        assert "spead2" not in result.stderr and "Event loop is closed" not in result.stderr


# -- a live capture (a FIFO whose writer stays silent) at exit -------------------------------


LIVE_PCAP_RECEIVER = """
    import os, sys, tempfile, threading
    import spead2, spead2.recv, spead2.send
    from tests.helpers.pcap_files import udp_frame, write_pcap

    packets = list(spead2.send.PacketGenerator(
        spead2.send.ItemGroup().get_start(), 1, 1472))
    folder = tempfile.mkdtemp()
    write_pcap(os.path.join(folder, "frames.pcap"), [udp_frame(p) for p in packets])
    data = open(os.path.join(folder, "frames.pcap"), "rb").read()
    fifo = os.path.join(folder, "live")
    os.mkfifo(fifo)

    def writer():  # like tcpdump with no traffic to capture: the FIFO stays open, silent
        fd = os.open(fifo, os.O_WRONLY)
        os.write(fd, data)
        threading.Event().wait()
    threading.Thread(target=writer, daemon=True).start()
    stream = spead2.recv.Stream(spead2.ThreadPool())
    stream.add_udp_pcap_file_reader(fifo)
    stream.get()  # the start heap has arrived; the reader now waits on the FIFO
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("ending", ["exit", "stop-then-exit", "ctrl-c"])
def test_exit_while_reading_a_silent_live_capture(ending: str) -> None:
    body = {
        "exit": 'print("exiting", flush=True)',
        "stop-then-exit": 'stream.stop()\nprint("exiting", flush=True)',
        "ctrl-c": 'print("ready", flush=True)\nstream.get()',
    }[ending]
    result = run_script(
        LIVE_PCAP_RECEIVER + textwrap.indent(body, "    "),
        interrupt_after_ready=ending == "ctrl-c",
    )
    if ending == "ctrl-c":
        assert result.stderr.strip().splitlines()[-1] == "KeyboardInterrupt", result.stderr
        assert result.stderr.count("Traceback") == 1, result.stderr
        assert "Exception ignored" not in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "exiting"
        assert_clean(result.stderr)


# -- a user's daemon thread still sending at exit ---------------------------------------------


DAEMON_SENDER = """
    import socket, sys, threading, time
    import numpy as np
    import spead2, spead2.send

    pool = spead2.ThreadPool()
    if sys.argv[1] == "udp":
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind(("127.0.0.1", 0))
        stream = spead2.send.UdpStream(pool, [rx.getsockname()])
    else:
        listener = socket.create_server(("127.0.0.1", 0))
        def drain():
            conn, _ = listener.accept()
            while conn.recv(1 << 20):
                pass
        threading.Thread(target=drain, daemon=True).start()
        stream = spead2.send.TcpStream(pool, [listener.getsockname()])
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "x", "", (4096,), dtype="u1", value=np.zeros(4096, np.uint8))
    heap = group.get_heap()
    def sender():
        while True:
            stream.send_heap(heap)
    threading.Thread(target=sender, daemon=True).start()
    time.sleep(0.05)  # the scenario: exit while that thread sends
    print("exiting", flush=True)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_exit_while_a_daemon_thread_is_sending(kind: str) -> None:
    for _ in range(4):  # it used to print an EBADF traceback in almost every run
        result = run_script(DAEMON_SENDER, args=[kind])
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "exiting"
        assert_clean(result.stderr)
