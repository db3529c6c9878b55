import asyncio
import threading

import pytest

from openmwaa.upstream.write_gate import WriteGate


def test_the_gate_is_shared_across_event_loops_in_order() -> None:
    gate = WriteGate()
    order: list[str] = []
    holder_ready = threading.Event()
    release_holder = threading.Event()

    def holder() -> None:
        async def main() -> None:
            await gate.acquire()
            order.append("holder")
            holder_ready.set()
            await asyncio.to_thread(release_holder.wait)
            gate.release()

        asyncio.run(main())

    def waiter(name: str, queued: threading.Event) -> None:
        async def main() -> None:
            task = asyncio.ensure_future(gate.acquire())
            await asyncio.sleep(0)  # one turn of the loop: the task runs up to its wait, queued
            queued.set()
            await task
            order.append(name)
            gate.release()

        asyncio.run(main())

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert holder_ready.wait(5)
    for name in ("first", "second"):
        queued = threading.Event()
        thread = threading.Thread(target=waiter, args=(name, queued))
        thread.start()
        assert queued.wait(5)
        threads.append(thread)
    assert order == ["holder"]  # both wait while the holder holds it
    release_holder.set()
    for thread in threads:
        thread.join(5)
    assert order == ["holder", "first", "second"]
    assert not gate.held


@pytest.mark.parametrize("when", ["queued", "handed over"])
def test_a_cancelled_waiter_never_wedges_the_gate(when: str) -> None:
    async def main() -> None:
        gate = WriteGate()
        await gate.acquire()
        waiter = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)
        if when == "handed over":
            gate.release()  # the hand-over is queued on the loop; the cancel lands first
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        if when == "queued":
            gate.release()
        await asyncio.sleep(0)
        assert not gate.held
        await asyncio.wait_for(gate.acquire(), 1)  # free for the next one
        gate.release()

    asyncio.run(main())


def test_a_waiter_whose_caller_went_away_leaves_the_queue_and_never_holds_the_gate() -> None:
    async def main() -> None:
        gate = WriteGate()
        await gate.acquire()
        gone = asyncio.Event()
        waiting = asyncio.ensure_future(gate.acquire_unless(gone))
        behind = asyncio.ensure_future(gate.acquire_unless(asyncio.Event()))
        await asyncio.sleep(0.01)
        gone.set()
        assert await asyncio.wait_for(waiting, 1) is False
        gate.release()  # straight to the one behind: the one that left is not in the queue
        assert await asyncio.wait_for(behind, 1) is True
        gate.release()
        await asyncio.sleep(0)
        assert not gate.held
        assert await gate.acquire_unless(gone) is False  # gone already: not even queued
        assert not gate.held

    asyncio.run(main())


def test_the_gate_handed_over_as_the_caller_goes_away_is_passed_on() -> None:
    async def main() -> None:
        gate = WriteGate()
        await gate.acquire()
        gone = asyncio.Event()
        waiting = asyncio.ensure_future(gate.acquire_unless(gone))
        await asyncio.sleep(0.01)
        gate.release()  # handed over ...
        gone.set()  # ... and the caller leaves in the same moment
        assert await asyncio.wait_for(waiting, 1) is False
        await asyncio.sleep(0.01)
        assert not gate.held

    asyncio.run(main())


def test_a_cancelled_acquire_unless_holds_nothing() -> None:
    async def main() -> None:
        gate = WriteGate()
        await gate.acquire()
        waiting = asyncio.ensure_future(gate.acquire_unless(asyncio.Event()))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.release()
        await asyncio.sleep(0.01)
        assert not gate.held

    asyncio.run(main())
