"""Fixtures for the web endpoint tests (helpers live in webtest_support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.webserver.webtest_support import FakeAirflow, Harness, make_harness, serve


@pytest.fixture(scope="session")
def fake_airflow() -> Iterator[FakeAirflow]:
    with serve(FakeAirflow()) as airflow:
        yield airflow


@pytest.fixture
def harness(fake_airflow: FakeAirflow) -> Harness:
    fake_airflow.requests.clear()
    return make_harness(fake_airflow)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
