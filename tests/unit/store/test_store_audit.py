"""The audit trail's writer: batches, retries, and what it counts when a write keeps failing."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect

from openmwaa.store.audit import AuditEntry, AuditLog
from openmwaa.store.db import open_engine


def _entry(request_id: str) -> AuditEntry:
    return AuditEntry(
        time=1.0,
        request_id=request_id,
        principal_arn=None,
        source_ip="127.0.0.1",
        action="airflow:GetEnvironment",
        resource=None,
        decision=None,
        deciding_statement=None,
        status=403,
        error_code="MissingAuthenticationTokenException",
    )


class InsertFailures:
    """Makes the next ``count`` audit inserts fail, or every insert of a poisoned request id."""

    def __init__(self, engine: Engine, count: int = 0, poison: str | None = None) -> None:
        self.count = count
        self.poison = poison
        self.inserts = 0
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO AUDIT_LOG"):
            return
        self.inserts += 1
        rows = parameters if isinstance(parameters, list) else [parameters]
        if self.poison is not None and any(self.poison in str(row) for row in rows):
            raise sqlite3.OperationalError("poisoned entry")
        if self.count > 0:
            self.count -= 1
            raise sqlite3.OperationalError("database is locked")


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_engine(f"sqlite:///{tmp_path / 'state.db'}")


def _ids(log: AuditLog) -> list[str]:
    return [entry.request_id for _, entry in log.query()]


def test_a_failed_batch_is_retried_not_counted_as_written(engine: Engine) -> None:
    failures = InsertFailures(engine, count=2)
    delays: list[float] = []
    log = AuditLog(engine, attempts=3, retry_delay=0.5, sleep=delays.append)
    log.start()
    for n in range(5):
        log.append(_entry(f"r{n}"))
    log.flush()
    log.stop()
    assert _ids(log) == [f"r{n}" for n in range(5)]
    assert (log.written, log.lost) == (5, 0)
    assert delays == [0.5, 1.0] and failures.inserts == 3


def test_what_cannot_be_written_is_counted_and_logged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    InsertFailures(engine, poison="bad-entry")
    log = AuditLog(engine, attempts=2, retry_delay=0, sleep=lambda _: None)
    log.start()
    with caplog.at_level(logging.WARNING, logger="openmwaa.store.audit"):
        for request_id in ("ok-1", "bad-entry", "ok-2"):
            log.append(_entry(request_id))
        log.flush()
        log.stop()
    # The good entries of the batch still reach the trail; the bad one is counted, not hidden.
    assert _ids(log) == ["ok-1", "ok-2"]
    assert (log.written, log.lost) == (2, 1)
    assert "1 entries could not be written and are lost (1 lost since start)" in caplog.text
    assert "1 entries lost since start" in caplog.text


def test_without_a_writer_thread_failures_are_counted_too(engine: Engine) -> None:
    InsertFailures(engine, count=10)
    log = AuditLog(engine, attempts=2, retry_delay=0, sleep=lambda _: None)
    log.append(_entry("r"))
    assert (log.written, log.lost) == (0, 1)


def test_an_older_database_gets_the_new_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the audit table as the first release made it
        db.execute(
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, time FLOAT, request_id VARCHAR(64), "
            "principal_arn VARCHAR(2048), source_ip VARCHAR(64), action VARCHAR(128), "
            "resource VARCHAR(2048), "
            "decision VARCHAR(32), deciding_statement VARCHAR(512), status INTEGER, error_code VARCHAR(128))"
        )
    engine = open_engine(f"sqlite:///{path}")
    assert "policy_errors" in {c["name"] for c in inspect(engine).get_columns("audit_log")}
    log = AuditLog(engine)
    log.append(_entry("after-upgrade"))
    assert _ids(log) == ["after-upgrade"]


def test_a_full_backlog_is_written_on_the_callers_thread_without_waiting(engine: Engine) -> None:
    InsertFailures(engine, count=1)
    delays: list[float] = []
    log = AuditLog(engine, interval=3600, max_pending=2, sleep=delays.append)
    log.start()
    for n in range(3):  # the third append finds the backlog full and drains it itself
        log.append(_entry(f"r{n}"))
    assert delays == []  # no retry pause on the request path: the failed batch went entry by entry
    assert (log.written, log.lost) == (2, 0)
    log.stop()
    assert _ids(log) == ["r0", "r1", "r2"]


def test_query_newest_first_reads_the_latest_entries(engine: Engine) -> None:
    log = AuditLog(engine)
    for index in range(5):
        log.append(_entry(f"r{index}"))
    log.start()
    log.flush()
    try:
        assert [e.request_id for _, e in log.query(limit=2, newest_first=True)] == ["r4", "r3"]
        assert [e.request_id for _, e in log.query(limit=2)] == ["r0", "r1"]
    finally:
        log.stop()
