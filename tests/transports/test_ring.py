import asyncio
import os
import select
import signal
import threading
import time

import pytest

import spead2
from spead2._thread_pool import run_on_loop
from spead2.recv._ring import HeapRing
from tests.helpers.waiting import wait_for


def produce(ring, loop, items, stop=False):
    """Put items and publish from the producer loop's thread."""

    def work():
        for item in items:
            ring.put(item)
        if stop:
            ring.stop()
        else:
            ring.publish()

    run_on_loop(loop, work)


def test_get_nowait_empty_then_stopped(pool):
    loop = pool.next_loop()
    ring = HeapRing(2, loop)
    with pytest.raises(spead2.Empty):
        ring.get_nowait()
    produce(ring, loop, [1], stop=True)
    assert ring.get_nowait() == 1
    with pytest.raises(spead2.Stopped):
        ring.get_nowait()


def test_blocking_get_wakes_on_publish(pool):
    loop = pool.next_loop()
    ring = HeapRing(4, loop)
    got = []
    consumer = threading.Thread(target=lambda: got.append(ring.get()))
    consumer.start()
    wait_for(lambda: ring._sync_waiters, "the consumer to wait in get()")
    assert not got
    produce(ring, loop, ["a", "b"])
    consumer.join(5)
    assert got == ["a"]
    assert ring.size() == 1


def test_blocking_get_raises_stopped_after_drain(pool):
    loop = pool.next_loop()
    ring = HeapRing(4, loop)
    errors = []

    def consume():
        try:
            while True:
                ring.get()
        except spead2.Stopped as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    produce(ring, loop, [1, 2], stop=True)
    consumer.join(5)
    assert not consumer.is_alive() and len(errors) == 1
    assert str(errors[0]) == "ring buffer has been stopped"


async def test_async_waiters_served_in_call_order():
    loop = asyncio.get_running_loop()
    ring = HeapRing(8, loop)
    tasks = [asyncio.create_task(ring.get_async()) for _ in range(3)]
    await asyncio.sleep(0)
    for item in "xyz":
        ring.put(item)
    ring.publish()
    assert await asyncio.gather(*tasks) == ["x", "y", "z"]


async def test_cancelled_waiter_skipped_and_stopped_reaches_all():
    loop = asyncio.get_running_loop()
    ring = HeapRing(8, loop)
    first = asyncio.create_task(ring.get_async())
    second = asyncio.create_task(ring.get_async())
    third = asyncio.create_task(ring.get_async())
    await asyncio.sleep(0)
    first.cancel()
    ring.put("only")
    ring.publish()
    assert await second == "only"
    ring.stop()
    with pytest.raises(spead2.Stopped):
        await third
    with pytest.raises(spead2.Stopped):
        await ring.get_async()
    assert first.cancelled()


async def test_heap_not_lost_when_consumer_cancelled_after_assignment():
    loop = asyncio.get_running_loop()
    ring = HeapRing(8, loop)
    task = asyncio.create_task(ring.get_async())
    await asyncio.sleep(0)
    ring.put("h")
    ring.publish()  # resolves the waiter's future inline
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ring.get_nowait() == "h"


async def test_async_consumer_finding_heaps_yields_every_capacity_heaps():
    """Heaps waiting are taken without a loop iteration each, but never more than capacity in a row."""
    loop = asyncio.get_running_loop()
    ring = HeapRing(4, loop)
    for item in range(13):
        ring.put(item)  # 4 in the ring, 9 held, each moving in as one is taken
    ring.publish()
    iterations = 0
    running = True

    async def count_iterations() -> None:
        nonlocal iterations
        while running:
            iterations += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_iterations())
    await asyncio.sleep(0)
    seen = []
    for _ in range(13):
        before = iterations
        seen.append((await ring.get_async(), iterations - before))
    running = False
    await counter
    assert [item for item, _ in seen] == list(range(13))
    # The loop ran (the other task had a turn) after every 4th heap, and only then.
    assert [ran > 0 for _, ran in seen] == [i % 4 == 3 for i in range(13)]


class _CancelledAsChecked(asyncio.Future):
    """A future whose waiting task is cancelled just as the ring resolves it.

    asyncio.run's SIGINT handler runs between bytecodes of the loop's thread, so
    it can cancel the task after the ring has seen the future not done and
    before it sets the result.
    """

    armed = False

    def set_result(self, result: object) -> None:
        if self.armed:
            self.cancel()
        super().set_result(result)


async def _waiter_cancelled_when_served(monkeypatch) -> tuple[HeapRing, asyncio.Task]:
    """A ring and a task waiting in its get_async whose future is cancelled as it is served."""
    loop = asyncio.get_running_loop()
    ring = HeapRing(8, loop)
    futures: list[_CancelledAsChecked] = []

    def create_future() -> asyncio.Future:
        futures.append(_CancelledAsChecked(loop=loop))
        return futures[-1]

    monkeypatch.setattr(loop, "create_future", create_future)
    task = asyncio.create_task(ring.get_async())
    await asyncio.sleep(0)
    monkeypatch.undo()
    futures[0].armed = True
    return ring, task


async def test_heap_kept_when_the_waiter_is_cancelled_while_being_served(monkeypatch):
    ring, task = await _waiter_cancelled_when_served(monkeypatch)
    ring.put("h")
    ring.publish()  # serves the waiter inline, and the cancel lands mid-serve
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ring.get_nowait() == "h"


async def test_stop_serves_quietly_a_waiter_cancelled_while_being_served(monkeypatch):
    ring, task = await _waiter_cancelled_when_served(monkeypatch)
    ring.stop()  # serves the waiter inline, and the cancel lands mid-serve
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(spead2.Stopped):
        ring.get_nowait()


async def test_async_consumer_with_producer_on_other_thread(pool):
    loop = pool.next_loop()
    ring = HeapRing(4, loop)
    waiter = asyncio.create_task(ring.get_async())
    await asyncio.sleep(0)
    await asyncio.to_thread(produce, ring, loop, [42])
    assert await asyncio.wait_for(waiter, 5) == 42


async def test_wait_space_released_by_consumer():
    loop = asyncio.get_running_loop()
    ring = HeapRing(1, loop)
    ring.put(1)
    assert ring.full()
    space = asyncio.create_task(ring.wait_space())
    await asyncio.sleep(0)
    assert not space.done()
    assert ring.get_nowait() == 1
    await asyncio.wait_for(space, 5)


async def test_fd_readable_iff_heaps_or_stopped():
    loop = asyncio.get_running_loop()
    ring = HeapRing(4, loop)
    fd = ring.signal_fd()

    def readable():
        return bool(select.select([fd], [], [], 0)[0])

    assert not readable()
    ring.put(1)
    ring.publish()
    assert readable()
    ring.get_nowait()
    assert not readable()
    ring.stop()
    assert readable()
    ring.close_fd()
    with pytest.raises(OSError):
        os.fstat(fd)


class _Interrupt(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_signal_exceptions_in_a_blocking_get_never_release_the_producers_lock(pool):
    """A signal handler raising in get() (Ctrl-C, a SIGTERM handler) while heaps keep coming.

    Interrupting Condition.wait while it re-acquired the ring's lock used to
    release that lock from under the producer's thread ("release unlocked lock").
    """
    loop = pool.next_loop()
    ring = HeapRing(4, loop)
    errors = []
    running = threading.Event()
    running.set()

    def producer() -> None:
        def work() -> None:
            try:
                for _ in range(3):
                    ring.get_nowait() if ring.size() >= 4 else None
                ring.put(object())
                ring.publish()
            except spead2.Empty:
                pass
            except Exception as exc:  # noqa: BLE001 - any error here is the finding
                errors.append(exc)

        while running.is_set():
            try:
                run_on_loop(loop, work)
            except RuntimeError:
                return

    def interrupt(signum, frame):
        raise _Interrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    interrupted = 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                # Armed inside the try: on a loaded machine the timer can fire
                # before the next statement starts.
                signal.setitimer(signal.ITIMER_REAL, 0.0002)
                while True:
                    ring.get()
            except _Interrupt:
                interrupted += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        running.clear()
        thread.join(10)
    assert interrupted > 100
    assert errors == []
    # The lock is free and consistent: a get and a put still work.
    produce(ring, loop, [1])
    assert ring.get() is not None


def test_put_many_is_put_in_order_and_holds_beyond_capacity(pool):
    loop = pool.next_loop()
    blocked = []
    ring = HeapRing(3, loop, on_block=lambda: blocked.append(1))

    def work():
        ring.put(0)
        ring.put_many([1])
        assert not ring.holding()
        ring.put_many([2, 3, 4])  # 2 fits; 3 and 4 are held, on_block called once
        ring.put_many([5])
        ring.publish()

    run_on_loop(loop, work)
    assert blocked == [1]
    assert ring.full() and ring.holding()
    assert [ring.get_nowait() for _ in range(6)] == [0, 1, 2, 3, 4, 5]
    assert not ring.holding()
    with pytest.raises(spead2.Empty):
        ring.get_nowait()
