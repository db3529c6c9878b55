"""The dashboard's reads of Airflow's REST API, and the per-environment cache that bounds them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from openmwaa.errors import RestApiServerError
from openmwaa.services.dashboard_data import (
    DASHBOARD_ROLE,
    DASHBOARD_USER,
    DagData,
    SnapshotCache,
    fetch_dag_data,
)
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def record(name: str = "prod", version: str = "3.3.1", status: str = "AVAILABLE") -> EnvironmentRecord:
    return EnvironmentRecord(
        key=EnvironmentKey("123456789012", "us-east-1", name),
        arn=f"arn:aws:airflow:us-east-1:123456789012:environment/{name}",
        status=status,
        created_at=0.0,
        config={"AirflowVersion": version},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={},
    )


class FakeAirflow:
    """Answers like Airflow's REST API, and remembers what it was asked."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[str, dict[str, Any], str, str]] = []
        self.fail = fail

    async def read(
        self, record: EnvironmentRecord, path: str, query: Mapping[str, Any], *, username: str, role: str
    ) -> Any:
        self.calls.append((path, dict(query), username, role))
        await asyncio.sleep(0)
        if self.fail:
            raise RestApiServerError("Airflow answered 503.", 503, {})
        if path.endswith("health"):
            return {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "unhealthy"}}
        if path == "/dags/~/dagRuns":
            totals = {"queued": 1, "running": 2, "success": 30, "failed": 3}
            runs = [
                {"dag_id": "etl", "dag_run_id": "r1", "end_date": "2026-01-01T01:00:00+00:00"},
                {"dag_id": "etl", "dag_run_id": "r2", "end_date": "2026-01-01T02:00:00+00:00"},
                {"dag_id": "report", "dag_run_id": "r9", "end_date": "2026-01-01T00:30:00+00:00"},
            ]
            state = query["state"]
            return {"dag_runs": runs if state == "failed" else [], "total_entries": totals[state]}
        if path == "/dags/~/dagRuns/~/taskInstances":
            return {
                "task_instances": [
                    {"dag_id": "etl", "dag_run_id": "r1", "task_id": "load", "try_number": 2,
                     "end_date": "2026-01-01T01:00:00+00:00"},
                    {"dag_id": "etl", "dag_run_id": "r2", "task_id": "load", "try_number": 1,
                     "end_date": "2026-01-01T02:00:00+00:00"},
                ],
                "total_entries": 2,
            }  # fmt: skip
        raise AssertionError(path)


async def test_one_refresh_reads_health_runs_by_state_and_failures_as_viewer() -> None:
    airflow = FakeAirflow()
    data = await fetch_dag_data(airflow, record(), NOW)
    assert data.error is None
    assert data.health == {"metadatabase": "healthy", "scheduler": "unhealthy"}
    assert data.runs_by_state == {"queued": 1, "running": 2, "success": 30, "failed": 3}
    assert [(d["dagId"], d["failedRuns"], d["lastRunId"]) for d in data.failing_dags] == [
        ("etl", 2, "r2"),
        ("report", 1, "r9"),
    ]
    assert [t["runId"] for t in data.failed_tasks] == ["r2", "r1"]  # newest first
    assert {(user, role) for _, _, user, role in airflow.calls} == {(DASHBOARD_USER, DASHBOARD_ROLE)}
    paths = [path for path, *_ in airflow.calls]
    assert paths.count("/dags/~/dagRuns") == 4 and "/monitor/health" in paths
    run_query = next(q for p, q, *_ in airflow.calls if p == "/dags/~/dagRuns")
    assert run_query["run_after_gte"] == "2027-01-14T08:00:00+00:00"  # NOW - 24 h


async def test_airflow_2_uses_its_own_paths_and_filters() -> None:
    airflow = FakeAirflow()
    await fetch_dag_data(airflow, record(version="2.11.2"), NOW)
    paths = {path for path, *_ in airflow.calls}
    assert "/health" in paths and "/monitor/health" not in paths
    run_query = next(q for p, q, *_ in airflow.calls if p == "/dags/~/dagRuns")
    assert "execution_date_gte" in run_query and "run_after_gte" not in run_query


async def test_an_airflow_error_is_kept_in_the_result() -> None:
    data = await fetch_dag_data(FakeAirflow(fail=True), record(), NOW)
    assert data.error == "Airflow answered 503." and data.runs_by_state == {}


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_many_viewers_share_one_refresh_per_interval() -> None:
    started = 0
    release = asyncio.Event()

    async def fetch(rec: EnvironmentRecord) -> DagData:
        nonlocal started
        started += 1
        await release.wait()
        return DagData(fetched_at=float(started))

    clock = Ticker()
    cache = SnapshotCache(fetch, refresh_interval=5.0, wait=1.0, clock=clock)
    viewers = [asyncio.create_task(cache.get(record())) for _ in range(50)]
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*viewers)
    assert started == 1 and all(r is not None and r.fetched_at == 1.0 for r in results)

    clock.now = 4.9  # still fresh: no read of Airflow
    assert (await cache.get(record())) is not None and started == 1
    clock.now = 5.0  # stale: the next viewer starts one refresh and gets its result
    got = await asyncio.gather(*(cache.get(record()) for _ in range(20)))
    assert started == 2 and {r.fetched_at for r in got if r} == {2.0}
    # Each environment has its own entry.
    await cache.get(record("other"))
    assert started == 3 and cache.refreshes == 3


async def test_a_slow_refresh_serves_the_previous_data_and_is_not_restarted() -> None:
    calls = 0
    gate = asyncio.Event()

    async def fetch(rec: EnvironmentRecord) -> DagData:
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()
        return DagData(fetched_at=float(calls))

    clock = Ticker()
    cache = SnapshotCache(fetch, refresh_interval=5.0, wait=0.05, clock=clock)
    assert (await cache.get(record())) == DagData(fetched_at=1.0)
    clock.now = 10.0
    stale = await asyncio.gather(*(cache.get(record()) for _ in range(5)))  # waits 0.05 s, then old data
    assert calls == 2 and all(s == DagData(fetched_at=1.0) for s in stale)
    clock.now = 20.0  # the refresh under way is shared, not started again, however late it is
    await cache.get(record())
    assert calls == 2
    gate.set()
    await asyncio.sleep(0.01)
    clock.now = 20.0 + 4.9
    assert (await cache.get(record())) == DagData(fetched_at=2.0)
    assert calls == 2


async def test_a_failing_fetch_is_recorded_and_retried_only_after_the_interval() -> None:
    calls = 0

    async def fetch(rec: EnvironmentRecord) -> DagData:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    clock = Ticker()
    cache = SnapshotCache(fetch, refresh_interval=5.0, clock=clock)
    first = await cache.get(record())
    assert first is not None and first.error is not None and "could not read" in first.error
    await cache.get(record())
    assert calls == 1
    clock.now = 5.0
    await cache.get(record())
    assert calls == 2


async def test_forgotten_environments_leave_the_cache() -> None:
    async def fetch(rec: EnvironmentRecord) -> DagData:
        return DagData(fetched_at=0.0)

    cache = SnapshotCache(fetch, clock=Ticker())
    await cache.get(record("a"))
    await cache.get(record("b"))
    cache.forget_except([str(record("b").key)])
    await cache.get(record("a"))
    await cache.get(record("b"))
    assert cache.refreshes == 3
