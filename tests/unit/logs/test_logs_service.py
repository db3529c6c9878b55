"""LogsService: FilterLogEvents merges streams by time and pages through them, within a scan budget."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.logs import reader, search
from openmwaa.logs.service import EnvironmentLogs, LogsService
from openmwaa.logs.tokens import TokenSigner

GROUP = "airflow-env-Task"


def service(logs: Path, *, scan_budget: int) -> LogsService:
    env = EnvironmentLogs("env", {"TaskLogs": {"Enabled": True, "LogLevel": "INFO"}}, logs, time.time())
    return LogsService(
        list_environments=lambda: [env],
        find_environment=lambda name: env if name == "env" else None,
        signer=TokenSigner(b"s" * 32),
        region="us-east-1",
        account_id="123456789012",
        scan_budget=scan_budget,
    )


def test_streams_are_interleaved_by_time_and_every_page_resumes_where_the_last_stopped(
    tmp_path: Path,
) -> None:
    for run, seconds in (("a", range(0, 60, 2)), ("b", range(1, 60, 2))):
        path = tmp_path / "airflow" / f"dag_id=d/run_id={run}/task_id=t/attempt=1.log"
        path.parent.mkdir(parents=True)
        path.write_text(
            "".join(f"2026-01-01T00:00:{s:02d}Z line {s} {'odd' if s % 2 else 'even'}\n" for s in seconds)
        )
    logs = service(tmp_path, scan_budget=100)  # a few lines per call: pages end on the budget too
    seen: list[str] = []
    token = None
    calls = 0
    while True:
        params = {"filterPattern": "line", "limit": 7, **({"nextToken": token} if token else {})}
        page = logs.filter_log_events(GROUP, params)
        seen += [e["message"].split(" ", 1)[1] for e in page["events"]]
        calls += 1
        token = page.get("nextToken")
        if token is None:
            break
    assert seen == [f"line {s} {'odd' if s % 2 else 'even'}" for s in range(60)]
    assert calls > 60 * 40 // 100 // 2  # the budget did cut pages short
    with pytest.raises(ValidationError):  # a token belongs to its query
        logs.filter_log_events(
            GROUP,
            {
                "filterPattern": "odd",
                "nextToken": logs.filter_log_events(GROUP, {"filterPattern": "line", "limit": 1})[
                    "nextToken"
                ],
            },
        )
    with pytest.raises(ResourceNotFoundError):
        logs.filter_log_events("airflow-env-Scheduler", {})  # SchedulerLogs not enabled


@pytest.mark.parametrize("block", [48, 100, 4096])
@pytest.mark.parametrize("budget", [64, 10_000])
def test_an_anchored_search_finds_what_a_line_by_line_scan_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, budget: int
) -> None:
    """Blocks, lines without a time of their own, a line longer than a block, pages and budgets:
    every match once, in time order, with the time a line-by-line read gives it."""
    monkeypatch.setattr(search, "BLOCK", block)
    for run, seconds in (("a", range(0, 40, 2)), ("b", range(1, 40, 2))):
        path = tmp_path / "airflow" / f"dag_id=d/run_id={run}/task_id=t/attempt=1.log"
        path.parent.mkdir(parents=True)
        lines = []
        for s in seconds:
            lines.append(f"2026-01-01T00:00:{s:02d}Z step {s} {'ERROR boom' if s % 3 == 0 else 'fine'}\n")
            if s % 5 == 0:
                lines.append(f"  traceback line of {s}: ERROR inside\n")  # no time: the previous line's
            if s == 20:
                lines.append("x" * 300 + " ERROR long\n")
        path.write_text("".join(lines))
    logs = service(tmp_path, scan_budget=budget)
    expected = []
    for run in ("a", "b"):
        path = tmp_path / "airflow" / f"dag_id=d/run_id={run}/task_id=t/attempt=1.log"
        with path.open("rb") as file:
            for _offset, _end, stamp, raw in reader.scan_forward(file, 0, default_timestamp=0):
                if b"ERROR" in raw and b"inside" not in raw:
                    expected.append((stamp, raw.decode()))
    expected.sort(key=lambda e: e[0])
    found: list[tuple[int, str]] = []
    token = None
    while True:
        params = {"filterPattern": "ERROR -inside", "limit": 3, **({"nextToken": token} if token else {})}
        page = logs.filter_log_events(GROUP, params)
        found += [(e["timestamp"], e["message"]) for e in page["events"]]
        token = page.get("nextToken")
        if token is None:
            break
    assert sorted(found) == sorted(expected) and [t for t, _ in found] == sorted(t for t, _ in found)
    assert len(found) == len(set(found)) == 15  # 14 steps with ERROR, and the long line
