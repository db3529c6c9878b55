"""What the dashboard reads from each environment's Airflow REST API, and the per-environment cache.

The dashboard reads Airflow the way a user's central dashboard would: through the REST API
(InvokeRestApi's upstream path, ``RestApiInvoker.read``), as a read-only Airflow user
(:data:`DASHBOARD_USER` with the ``Viewer`` role), whatever the viewer's own role.

One refresh of an environment is six GETs, sent together: the health endpoint, the number of DAG
runs in each of four states over the last 24 hours (``total_entries`` of a ``limit=1`` page, the
failed ones with up to 100 runs to name the failing DAGs), and up to 100 task instances that
failed in the last 24 hours.

:class:`SnapshotCache` bounds the load on each environment whatever the number of viewers: at most
one refresh of an environment starts every ``refresh_interval`` seconds, and viewers asking at
the same time share it. A viewer gets data at most ``refresh_interval`` seconds old, or waits (up
to ``wait`` seconds) for the refresh under way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Protocol

from openmwaa.errors import OpenMwaaError
from openmwaa.runtime.versions import major
from openmwaa.store.environments import EnvironmentRecord

log = logging.getLogger(__name__)

DASHBOARD_USER: Final = "openmwaa-dashboard"
DASHBOARD_ROLE: Final = "Viewer"
RUN_STATES: Final = ("queued", "running", "success", "failed")
WINDOW_SECONDS: Final = 24 * 3600
#: Failing DAGs and failed task instances shown per environment.
MAX_LISTED: Final = 10
_PAGE: Final = 100


class AirflowReader(Protocol):
    async def read(
        self, record: EnvironmentRecord, path: str, query: Mapping[str, Any], *, username: str, role: str
    ) -> Any: ...


@dataclass(frozen=True)
class DagData:
    """One refresh of an environment's Airflow data (``error`` says why it is missing, if it is)."""

    fetched_at: float
    health: Mapping[str, str] = field(default_factory=dict)
    runs_by_state: Mapping[str, int] = field(default_factory=dict)
    failing_dags: tuple[Mapping[str, Any], ...] = ()
    failed_tasks: tuple[Mapping[str, Any], ...] = ()
    error: str | None = None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


async def fetch_dag_data(reader: AirflowReader, record: EnvironmentRecord, now: float) -> DagData:
    """Read one environment's data (every GET at once); an error is kept in the result, never raised."""
    airflow_major = major(str(record.config["AirflowVersion"]))
    since = _iso(now - WINDOW_SECONDS)
    # Airflow 3 lists runs by run_after (a manual run has no logical date); Airflow 2 by execution date.
    run_filter = "run_after_gte" if airflow_major >= 3 else "execution_date_gte"

    def get(path: str, **query: Any) -> Awaitable[Any]:
        return reader.read(record, path, query, username=DASHBOARD_USER, role=DASHBOARD_ROLE)

    calls = [get("/monitor/health" if airflow_major >= 3 else "/health")]
    for state in RUN_STATES:
        limit = _PAGE if state == "failed" else 1
        calls.append(get("/dags/~/dagRuns", state=state, limit=limit, order_by="-id", **{run_filter: since}))
    calls.append(get("/dags/~/dagRuns/~/taskInstances", state="failed", end_date_gte=since, limit=_PAGE))
    try:
        health, *answers = await asyncio.gather(*calls)
    except OpenMwaaError as exc:
        return DagData(fetched_at=now, error=exc.message)
    runs = answers[: len(RUN_STATES)]
    return DagData(
        fetched_at=now,
        health=_health(health),
        runs_by_state={state: _total(page) for state, page in zip(RUN_STATES, runs, strict=True)},
        failing_dags=_failing_dags(_items(runs[-1], "dag_runs")),
        failed_tasks=_failed_tasks(_items(answers[-1], "task_instances")),
    )


def _items(page: Any, key: str) -> list[Mapping[str, Any]]:
    items = page.get(key) if isinstance(page, Mapping) else None
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _total(page: Any) -> int:
    total = page.get("total_entries") if isinstance(page, Mapping) else None
    return total if isinstance(total, int) and total >= 0 else 0


def _health(body: Any) -> dict[str, str]:
    if not isinstance(body, Mapping):
        return {}
    health = {}
    for name, part in body.items():
        status = part.get("status") if isinstance(part, Mapping) else None
        health[str(name)] = str(status) if status else "not reporting"
    return health


def _when(item: Mapping[str, Any], *keys: str) -> str:
    return next((str(item[k]) for k in keys if isinstance(item.get(k), str)), "")


def _failing_dags(failed_runs: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """DAGs with failed runs in the window: how many, and the latest one (most failures first)."""
    dags: dict[str, dict[str, Any]] = {}
    for run in failed_runs:
        dag_id = str(run.get("dag_id", ""))
        when = _when(run, "end_date", "start_date", "run_after", "logical_date", "execution_date")
        entry = dags.setdefault(
            dag_id, {"dagId": dag_id, "failedRuns": 0, "lastRunId": "", "lastFailure": ""}
        )
        entry["failedRuns"] += 1
        if when >= entry["lastFailure"]:
            entry["lastFailure"] = when
            entry["lastRunId"] = str(run.get("dag_run_id", ""))
    ranked = sorted(dags.values(), key=lambda d: (-d["failedRuns"], d["dagId"]))
    return tuple(ranked[:MAX_LISTED])


def _failed_tasks(instances: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    """The most recent failed task instances."""
    tasks = [
        {
            "dagId": str(ti.get("dag_id", "")),
            "runId": str(ti.get("dag_run_id", "")),
            "taskId": str(ti.get("task_id", "")),
            "tryNumber": ti.get("try_number") if isinstance(ti.get("try_number"), int) else None,
            "endDate": _when(ti, "end_date", "start_date"),
        }
        for ti in instances
    ]
    tasks.sort(key=lambda t: str(t["endDate"]), reverse=True)
    return tuple(tasks[:MAX_LISTED])


@dataclass
class _Entry:
    data: DagData | None = None
    #: When the last refresh started, or ended if it has.
    started_at: float = float("-inf")
    task: asyncio.Task[DagData] | None = None


class SnapshotCache:
    """Each environment's latest :class:`DagData`, refreshed at most once per ``refresh_interval``."""

    def __init__(
        self,
        fetch: Callable[[EnvironmentRecord], Awaitable[DagData]],
        *,
        refresh_interval: float = 5.0,
        wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._interval = refresh_interval
        self._wait = wait
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self.refreshes = 0

    @property
    def refresh_interval(self) -> float:
        return self._interval

    async def get(self, record: EnvironmentRecord) -> DagData | None:
        """The environment's data: fresh, or the refresh under way (awaited up to ``wait`` seconds when
        older data exists), or None while the first refresh has not finished within that time."""
        key = str(record.key)
        entry = self._entries.setdefault(key, _Entry())
        now = self._clock()
        running = entry.task is not None and not entry.task.done()
        if not running and now - entry.started_at >= self._interval:
            entry.started_at = now
            entry.task = asyncio.ensure_future(self._refresh(entry, record))
            self.refreshes += 1
            running = True
        if running and entry.task is not None:
            # shield: a viewer who stops waiting does not cancel the refresh the others share.
            await asyncio.wait({asyncio.shield(entry.task)}, timeout=self._wait)
        return entry.data

    def forget_except(self, keys: Iterable[str]) -> None:
        """Drop the entries of environments that no longer exist."""
        keep = set(keys)
        for key in [k for k in self._entries if k not in keep]:
            entry = self._entries.pop(key)
            if entry.task is not None and not entry.task.done():
                entry.task.cancel()

    async def _refresh(self, entry: _Entry, record: EnvironmentRecord) -> DagData:
        try:
            data = await self._fetch(record)
        except Exception:
            log.exception("dashboard: reading %s's Airflow failed", record.name)
            data = DagData(
                fetched_at=time.time(), error="openmwaa could not read this environment's Airflow."
            )
        entry.data = data
        # The interval counts from the end of a refresh too: a slow Airflow is not read back to back.
        entry.started_at = self._clock()
        return data
