import asyncio
import os
import subprocess
import sys
import threading

import pytest

import spead2
from spead2._thread_pool import run_on_loop


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
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ready"
    assert result.stderr == ""


async def test_run_on_loop_inline_on_own_loop():
    loop = asyncio.get_running_loop()
    assert run_on_loop(loop, threading.get_ident) == threading.get_ident()
