import asyncio
import threading

import httpx
import pytest

from openmwaa.services.upstream import airflow_http_client
from openmwaa.services.write_gate import WriteGate, WriteGates


class SlowAirflow(httpx.AsyncBaseTransport):
    """Answers after a pause and records how many requests per origin were in flight at once."""

    def __init__(self, pause: float = 0.05) -> None:
        self.pause = pause
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.port}"
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self.peak[key] = max(self.peak.get(key, 0), self.in_flight[key])
        await asyncio.sleep(self.pause)
        self.in_flight[key] -= 1
        return httpx.Response(201, json={"ok": True})


def gated(transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout | float = 5) -> httpx.AsyncClient:
    return airflow_http_client(timeout=timeout, transport=transport, write_gates=WriteGates())


def run_concurrently(transport: SlowAirflow, requests: list[tuple[str, str]]) -> list[int]:
    async def main() -> list[int]:
        async with gated(transport) as client:
            responses = await asyncio.gather(*(client.request(method, url) for method, url in requests))
            return [r.status_code for r in responses]

    return asyncio.run(main())


def test_writes_to_one_airflow_go_one_at_a_time_reads_and_other_airflows_do_not_wait() -> None:
    airflow = SlowAirflow()
    requests = (
        [("POST", "http://127.0.0.1:1001/api/v2/variables")] * 4
        + [("PATCH", "http://127.0.0.1:1001/api/v2/dags/x")] * 2
        + [("POST", "http://127.0.0.1:1002/api/v2/variables")] * 3
        + [("GET", "http://127.0.0.1:1001/api/v2/dags")] * 5
    )
    assert run_concurrently(airflow, requests) == [201] * len(requests)
    assert airflow.peak["POST 1001"] == 1 and airflow.peak["PATCH 1001"] == 1
    assert airflow.peak["GET 1001"] == 5  # reads are never held back
    assert airflow.peak["POST 1002"] == 1


def test_without_gates_writes_do_overlap() -> None:
    """The control for the test above: the fake does see overlap when nothing serializes."""
    airflow = SlowAirflow()

    async def main() -> None:
        async with airflow_http_client(timeout=5, transport=airflow) as client:
            await asyncio.gather(*(client.post("http://127.0.0.1:1001/v") for _ in range(3)))

    asyncio.run(main())
    assert airflow.peak["POST 1001"] == 3


def test_waiting_for_the_gate_is_bounded_by_the_pool_timeout() -> None:
    airflow = SlowAirflow(pause=0.5)
    requests = [("POST", "http://127.0.0.1:1001/v")] * 2

    async def main() -> list[object]:
        timeout = httpx.Timeout(5, pool=0.1)
        async with gated(airflow, timeout) as client:
            return await asyncio.gather(*(client.request(m, u) for m, u in requests), return_exceptions=True)

    first, second = asyncio.run(main())
    assert isinstance(first, httpx.Response) and first.status_code == 201
    assert isinstance(second, httpx.PoolTimeout)


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
            await asyncio.sleep(0.05)
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
