"""Exit with live streams, at volume: every way a program ends, with traffic in flight.

Usage::

    python bench/exit_with_live_streams.py --runs 1000 --jobs 2
    python bench/exit_with_live_streams.py --runs 10          # one of each case (CI's smoke)
    python bench/exit_with_live_streams.py --child sync:sigint   # one program, by hand

Each run is a fresh interpreter (a "child") that sets up, mid-transfer, every
kind of reader and sender at once: UDP, TCP and inproc receive streams each
fed by a send stream of ours, a pcap reader on a live capture (a FIFO whose
writer keeps writing frames) and one on a capture file too large for its
ring (paused by backpressure). Heaps are being consumed when the program
ends. ``sync`` children use ``spead2.recv.Stream`` and the blocking send
streams from threads; ``asyncio`` children do it all inside ``asyncio.run``
with the asyncio streams.

Endings, each one case per mode:

- ``normal``: the main code returns with everything still live;
- ``thread-exit``: a thread calls ``sys.exit(3)`` (which ends only that
  thread), then the main code returns;
- ``exception``: the main code raises (for ``asyncio``: ``asyncio.run``
  ends by the coroutine's exception);
- ``sigint``: SIGINT (Ctrl-C) while the main thread waits for a heap;
- ``sigterm``: SIGTERM, handled the usual way for a service: ``sync``
  children ``signal.signal(SIGTERM, lambda *_: sys.exit(143))``; ``asyncio``
  ones cancel the main task (``loop.add_signal_handler``) and then
  ``sys.exit(143)`` once ``asyncio.run`` has returned.

A run passes when the child exits within ``--timeout`` seconds of its ending
(else it is a hang, and killed), with the exit status that ending asks for
(0, 0, 1, SIGINT's, 143), and with nothing on stderr but what that ending
prints itself: no traceback at all for ``normal``, ``thread-exit`` and
``sigterm``; exactly the user's own one for ``exception`` (ending in
``RuntimeError: the user's own error``) and Python's ``KeyboardInterrupt``
one for ``sigint``. Exit status 0 if every run passed.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ("sync", "asyncio")
ENDINGS = ("normal", "thread-exit", "exception", "sigint", "sigterm")
CASES = [f"{mode}:{ending}" for mode in MODES for ending in ENDINGS]
USER_ERROR = "RuntimeError: the user's own error"
#: Bytes per second each sender is held to: traffic in flight without eating the machine.
RATE = 20e6


# -- the child: one program with everything live ----------------------------------------------


def _child(case: str) -> None:
    import logging

    mode, ending = case.split(":")
    # The paused reader's "consumer is not keeping up" WARNING is by design; errors
    # (a reader failing, one failing to close) still reach stderr and fail the run.
    logging.getLogger("spead2").setLevel(logging.ERROR)
    sys.path.insert(0, ROOT)
    # A program started in the background by a non-interactive shell inherits SIGINT
    # ignored, and Python then leaves it so: restore what an interactive start gives.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if ending == "sigterm" and mode == "sync":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if mode == "sync":
        _sync_child(ending)
    else:
        _asyncio_child(ending)


def _heap_and_frames():
    import numpy as np

    import spead2.send

    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "data", "", (4096,), dtype="u1", value=np.arange(4096, dtype=np.uint8) % 251)
    heap = group.get_heap(descriptors="all")
    return heap, list(spead2.send.PacketGenerator(heap, 1, 1472))


def _capture_files(packets: list[bytes]) -> tuple[str, str, bytes, bytes]:
    """A FIFO path, a large capture file, and the header and frames a live writer writes."""
    from tests.helpers.pcap_files import udp_frame, write_pcap

    folder = os.environ["SPEAD2_EXIT_DIR"]  # made and removed by the parent
    big = os.path.join(folder, "big.pcap")
    write_pcap(big, [udp_frame(p) for p in packets] * 100)
    one = os.path.join(folder, "one.pcap")
    write_pcap(one, [udp_frame(p) for p in packets])
    with open(one, "rb") as f:
        data = f.read()
    fifo = os.path.join(folder, "live")
    os.mkfifo(fifo)
    return fifo, big, data[:24], data[24:]


def _live_writer(fifo: str, header: bytes, frames: bytes) -> None:
    """Like ``tcpdump -U -w FIFO``: a header, then frames as they come, for ever."""
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, header)
    try:
        while True:
            os.write(fd, frames)
            time.sleep(0.01)
    except BrokenPipeError:  # the reader closed it
        os.close(fd)


def _start_thread(target, *args) -> None:
    import threading

    threading.Thread(target=target, args=args, daemon=True).start()


def _end(ending: str) -> None:
    """End the program the way ``ending`` says (signals: the caller waits for them)."""
    import threading

    print("ready", flush=True)  # for signals, the parent sends the signal now
    if ending == "thread-exit":
        thread = threading.Thread(target=sys.exit, args=(3,))
        thread.start()
        thread.join()
    elif ending == "exception":
        raise RuntimeError("the user's own error")


def _sync_child(ending: str) -> None:
    import socket

    import spead2
    import spead2.recv
    import spead2.send

    heap, packets = _heap_and_frames()
    pool = spead2.ThreadPool(2)
    config = spead2.send.StreamConfig(rate=RATE)
    streams = {}

    udp_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_rx.bind(("127.0.0.1", 0))
    streams["udp"] = spead2.recv.Stream(pool)
    streams["udp"].add_udp_reader(udp_rx)
    udp_tx = spead2.send.UdpStream(pool, [udp_rx.getsockname()], config)

    listener = socket.create_server(("127.0.0.1", 0))
    streams["tcp"] = spead2.recv.Stream(pool)
    streams["tcp"].add_tcp_reader(listener)
    tcp_tx = spead2.send.TcpStream(pool, [listener.getsockname()], config)

    queue = spead2.InprocQueue()
    streams["inproc"] = spead2.recv.Stream(pool)
    streams["inproc"].add_inproc_reader(queue)
    inproc_tx = spead2.send.InprocStream(pool, [queue], config)

    fifo, big, header, frames = _capture_files(packets)
    _start_thread(_live_writer, fifo, header, frames)
    streams["pcap-live"] = spead2.recv.Stream(pool)
    streams["pcap-live"].add_udp_pcap_file_reader(fifo)
    paused = spead2.recv.Stream(pool, ring_config=spead2.recv.RingStreamConfig(heaps=2))
    paused.add_udp_pcap_file_reader(big)  # never consumed: its reader waits for room

    def send_forever(stream) -> None:
        try:
            while True:
                stream.send_heap(heap)
        except ConnectionError:
            # TCP: at exit the receiving stream's connection is closed with data
            # unread (a reset), as any TCP client must expect of its peer.
            return

    for sender in (udp_tx, tcp_tx, inproc_tx):
        _start_thread(send_forever, sender)
    for name in ("tcp", "inproc", "pcap-live"):
        streams[name].get()
        _start_thread(lambda s=streams[name]: [None for _ in s])
    streams["udp"].get()
    _end(ending)
    while ending in ("sigint", "sigterm"):
        streams["udp"].get()


def _asyncio_child(ending: str) -> None:
    import asyncio

    async def main() -> None:
        import socket

        import spead2
        import spead2.recv
        import spead2.recv.asyncio
        import spead2.send
        import spead2.send.asyncio

        heap, packets = _heap_and_frames()
        pool = spead2.ThreadPool()
        config = spead2.send.StreamConfig(rate=RATE)
        streams = {}
        senders = []

        udp_rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_rx.bind(("127.0.0.1", 0))
        streams["udp"] = spead2.recv.asyncio.Stream(pool)
        streams["udp"].add_udp_reader(udp_rx)
        senders.append(spead2.send.asyncio.UdpStream(pool, [udp_rx.getsockname()], config))

        listener = socket.create_server(("127.0.0.1", 0))
        streams["tcp"] = spead2.recv.asyncio.Stream(pool)
        streams["tcp"].add_tcp_reader(listener)
        senders.append(
            await spead2.send.asyncio.TcpStream.connect(pool, [listener.getsockname()], config)
        )

        queue = spead2.InprocQueue()
        streams["inproc"] = spead2.recv.asyncio.Stream(pool)
        streams["inproc"].add_inproc_reader(queue)
        senders.append(spead2.send.asyncio.InprocStream(pool, [queue], config))

        fifo, big, header, frames = _capture_files(packets)
        _start_thread(_live_writer, fifo, header, frames)
        streams["pcap-live"] = spead2.recv.asyncio.Stream(pool)
        streams["pcap-live"].add_udp_pcap_file_reader(fifo)
        paused = spead2.recv.asyncio.Stream(
            pool, ring_config=spead2.recv.RingStreamConfig(heaps=2)
        )
        paused.add_udp_pcap_file_reader(big)

        async def send_forever(stream) -> None:
            while True:
                await stream.async_send_heap(heap)

        async def consume(stream) -> None:
            async for _ in stream:
                pass

        tasks = [asyncio.create_task(send_forever(s)) for s in senders]
        for name in ("tcp", "inproc", "pcap-live"):
            await streams[name].get()
            tasks.append(asyncio.create_task(consume(streams[name])))
        await streams["udp"].get()
        # Returning (or raising) with every stream, sender and task still live.
        main.keep = (streams, senders, tasks, paused)  # type: ignore[attr-defined]
        if ending == "sigterm":
            # asyncio's way: the signal cancels the main task (a handler raising
            # SystemExit would end whichever task happened to be running).
            main_task = asyncio.current_task()
            assert main_task is not None
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
        _end(ending)
        try:
            while ending in ("sigint", "sigterm"):
                await streams["udp"].get()
        except asyncio.CancelledError:
            if ending != "sigterm":
                raise
            main.terminated = True  # type: ignore[attr-defined]

    asyncio.run(main())
    if getattr(main, "terminated", False):
        sys.exit(143)


# -- the parent: many children, judged -------------------------------------------------------


def _expected(case: str) -> tuple[set[int], str | None]:
    """Exit statuses accepted for ``case`` and the last stderr line of its one traceback."""
    ending = case.split(":")[1]
    if ending == "exception":
        return {1}, USER_ERROR
    if ending == "sigint":
        return {-signal.SIGINT, 128 + signal.SIGINT}, "KeyboardInterrupt"
    if ending == "sigterm":
        return {143}, None
    return {0}, None


def run_one(case: str, timeout: float) -> str | None:
    """Run one child; None if it passed, else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="spead2-exit-") as folder:
        return _run_in(folder, case, timeout)


def _run_in(folder: str, case: str, timeout: float) -> str | None:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--child", case],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "SPEAD2_EXIT_DIR": folder},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    ready = ""
    try:
        # "ready": traffic flows on every stream (and, for signals, the main thread waits).
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            if selector.select(max(0.0, deadline - time.monotonic())):
                ready = proc.stdout.readline()
        ending = case.split(":")[1]
        if ready.strip() == "ready" and ending in ("sigint", "sigterm"):
            time.sleep(0.1)  # into the wait for the next heap
            proc.send_signal(signal.SIGINT if ending == "sigint" else signal.SIGTERM)
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return f"HANG (killed after {timeout:.0f} s); ready={ready!r}; stderr: {err[-2000:]}"
    statuses, last_line = _expected(case)
    problems = []
    if ready.strip() != "ready":
        problems.append(f"never ready: {ready!r}")
    if proc.returncode not in statuses:
        problems.append(f"exit status {proc.returncode}, expected {sorted(statuses)}")
    # One exception, possibly chained: asyncio.run's KeyboardInterrupt follows the main
    # task's CancelledError ("During handling of the above exception ...").
    tracebacks = err.count("Traceback") - err.count("During handling of the above exception")
    lines = err.strip().splitlines()
    if last_line is None:
        if err.strip():
            problems.append("stderr not empty")
    elif tracebacks != 1 or not lines or lines[-1] != last_line:
        problems.append(f"expected exactly one traceback ending {last_line!r}")
    if "Exception ignored" in err or "Error closing" in err or "error closing" in err:
        problems.append("exception ignored / error closing")
    if problems:
        return "; ".join(problems) + f"\nstderr: {err[-3000:]}"
    return None


def main() -> None:
    """Parse the command line; run a child, or many and report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=len(CASES), help="children to run, cases in turn")
    parser.add_argument("--jobs", type=int, default=1, help="children at once")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a hang")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated MODE:ENDING")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    cases = [c for c in args.cases.split(",") if c]
    for case in cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}; choose from {', '.join(CASES)}")
    plan = [cases[i % len(cases)] for i in range(args.runs)]
    started = time.monotonic()
    failures: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max(1, args.jobs)) as executor:
        for i, (case, problem) in enumerate(
            zip(plan, executor.map(lambda c: run_one(c, args.timeout), plan), strict=True)
        ):
            if problem is not None:
                failures.setdefault(case, []).append(problem)
                print(f"run {i + 1} ({case}): FAILED: {problem}", flush=True)
            if (i + 1) % 50 == 0:
                print(f"{i + 1} runs, {sum(map(len, failures.values()))} failed", flush=True)
    elapsed = time.monotonic() - started
    hangs = sum(p.startswith("HANG") for ps in failures.values() for p in ps)
    tracebacks = sum("traceback" in p or "stderr not empty" in p for ps in failures.values() for p in ps)
    print(f"{args.runs} runs of {len(cases)} cases in {elapsed:.0f} s: "
          f"{args.runs - sum(map(len, failures.values()))} passed, "
          f"{sum(map(len, failures.values()))} failed ({hangs} hangs, {tracebacks} with stray output)")
    for case in cases:
        n = plan.count(case)
        bad = len(failures.get(case, []))
        print(f"  {case:<22} {n - bad}/{n}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
