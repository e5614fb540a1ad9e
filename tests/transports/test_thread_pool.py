import asyncio
import os
import subprocess
import sys
import threading

import pytest

import spead2
import spead2.recv
from spead2._thread_pool import run_on_loop
from tests.helpers.waiting import wait_for


def test_threads_validated():
    with pytest.raises(ValueError, match="at least one thread is required"):
        spead2.ThreadPool(0)


def test_loops_round_robin_and_run_work():
    pool = spead2.ThreadPool(threads=2)
    try:
        loops = [pool.next_loop() for _ in range(4)]
        assert loops[0] is loops[2] and loops[1] is loops[3] and loops[0] is not loops[1]
        idents = {run_on_loop(loop, threading.get_ident) for loop in loops[:2]}
        assert threading.get_ident() not in idents and len(idents) == 2
    finally:
        pool.stop()


def test_run_on_loop_propagates_errors():
    pool = spead2.ThreadPool()
    try:
        with pytest.raises(ZeroDivisionError):
            run_on_loop(pool.next_loop(), lambda: 1 / 0)
    finally:
        pool.stop()


def test_stop_is_idempotent_and_refuses_new_streams():
    pool = spead2.ThreadPool()
    pool.stop()
    pool.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        pool.next_loop()


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity API on this platform")
def test_affinity_applied():
    core = sorted(os.sched_getaffinity(0))[0]
    pool = spead2.ThreadPool(1, [core])
    try:
        got = run_on_loop(pool.next_loop(), os.sched_getaffinity, 0)
        assert got == {core}
    finally:
        pool.stop()


def test_uses_uvloop_when_installed():
    uvloop = pytest.importorskip("uvloop")
    pool = spead2.ThreadPool()
    try:
        assert isinstance(pool.next_loop(), uvloop.Loop)
    finally:
        pool.stop()


def test_interpreter_exits_with_live_pool_and_stream():
    code = (
        "import spead2, spead2.recv\n"
        "pool = spead2.ThreadPool(2)\n"
        "stream = spead2.recv.Stream(pool)\n"
        "stream.add_inproc_reader(spead2.InprocQueue())\n"
        "print('ready')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ready"
    assert result.stderr == ""


async def test_run_on_loop_inline_on_own_loop():
    loop = asyncio.get_running_loop()
    assert run_on_loop(loop, threading.get_ident) == threading.get_ident()


def test_call_queued_as_the_loop_stops_fails_promptly():
    """A call queued just after the loop stopped (a racing ThreadPool.stop) fails, never hangs."""
    loop = asyncio.new_event_loop()
    finished = threading.Event()

    def run():
        loop.run_forever()
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    while not loop.is_running():
        threading.Event().wait(0.001)
    queue_call = loop.call_soon_threadsafe

    def stop_first(callback, *args):
        # The race, made certain: the loop stops between run_on_loop's check and the queueing.
        queue_call(loop.stop)
        assert finished.wait(10)
        return queue_call(callback, *args)

    loop.call_soon_threadsafe = stop_first
    ran = []
    outcome = []

    def caller():
        try:
            run_on_loop(loop, lambda: ran.append(True))
        except RuntimeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "run_on_loop waited for ever on a stopped loop"
    assert "stopped before the call could run" in str(outcome[0])
    # Cancelled, not just abandoned: the loop running again does not run it behind the caller's back.
    del loop.call_soon_threadsafe
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.close()
    assert ran == []


@pytest.mark.timeout(120)
def test_stream_calls_racing_pool_stop_never_hang():
    """stop(), add_udp_reader() and start() from one thread while another stops the pool."""
    hung = 0
    for i in range(60):
        pool = spead2.ThreadPool()
        stream = spead2.recv.Stream(pool, spead2.recv.StreamConfig(explicit_start=True))
        call = [
            stream.stop,
            lambda stream=stream: stream.add_udp_reader(0, bind_hostname="127.0.0.1"),
            stream.start,
        ][i % 3]

        def guarded(call=call):
            try:
                call()
            except RuntimeError as exc:  # the loop had stopped: a clear error is fine
                assert "loop" in str(exc)

        threads = [threading.Thread(target=pool.stop, daemon=True),
                   threading.Thread(target=guarded, daemon=True)]
        for thread in threads:
            thread.start()
        threads[1].join(10)
        hung += threads[1].is_alive()
        threads[0].join(10)
    assert hung == 0


# -- a MemoryPool refilled in the background on a thread pool's loop --------------------------


def test_pool_with_thread_pool_refills_in_background():
    threads = spead2.ThreadPool()
    try:
        pool = spead2.MemoryPool(threads, 1, 64, max_free=4, initial=4, low_water=2)
        for _ in range(3):
            pool.allocate(32)
        wait_for(lambda: pool.free_buffers >= 4, "the pool to refill", timeout=5)
        assert pool.free_buffers == 4
    finally:
        threads.stop()
