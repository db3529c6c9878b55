"""StatusWatch: coroutines woken by status changes made on other threads, none missed."""

from __future__ import annotations

import asyncio
import threading

from openmwaa.services.status_watch import StatusWatch

KEY = "123456789012/us-east-1/env"


def test_a_change_on_another_thread_wakes_the_waiter() -> None:
    watch = StatusWatch()

    async def main() -> bool:
        seen = watch.generation(KEY)
        waiting = asyncio.ensure_future(watch.wait(KEY, seen, timeout=30))
        while watch.waiting(KEY) == 0:
            await asyncio.sleep(0)
        thread = threading.Thread(target=watch.changed, args=(KEY,))
        thread.start()
        thread.join()
        return await waiting

    assert asyncio.run(main()) is True
    assert watch.waiting(KEY) == 0


def test_a_change_between_reading_and_waiting_is_not_missed() -> None:
    watch = StatusWatch()

    async def main() -> bool:
        seen = watch.generation(KEY)
        watch.changed(KEY)  # after the caller read its record, before it waits
        return await watch.wait(KEY, seen, timeout=30)

    assert asyncio.run(main()) is True


def test_other_keys_do_not_wake_it_and_the_timeout_ends_the_wait() -> None:
    watch = StatusWatch()

    async def main() -> bool:
        seen = watch.generation(KEY)
        watch.changed("123456789012/us-east-1/other")
        return await watch.wait(KEY, seen, timeout=0.05)

    assert asyncio.run(main()) is False
    assert watch.waiting(KEY) == 0


def test_a_non_positive_timeout_does_not_wait() -> None:
    watch = StatusWatch()
    assert asyncio.run(watch.wait(KEY, watch.generation(KEY), timeout=-1)) is False
