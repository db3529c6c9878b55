import asyncio

import httpx

from openmwaa.services.upstream import airflow_http_client


def test_the_shared_client_never_carries_one_callers_cookie_to_another() -> None:
    seen: list[str | None] = []

    def airflow(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=alice-session; Path=/"})

    async def two_callers() -> None:
        client = airflow_http_client(timeout=5, transport=httpx.MockTransport(airflow))
        async with client:
            await client.get("http://127.0.0.1:1/api/v2/dags")
            await client.get("http://127.0.0.1:1/api/v2/dags")

    asyncio.run(two_callers())
    assert seen == [None, None]
