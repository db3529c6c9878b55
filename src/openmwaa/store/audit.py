"""The audit trail: one row per API call, written off the request path in batches."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from openmwaa.store.models import AuditRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    time: float
    request_id: str
    principal_arn: str | None
    source_ip: str
    action: str | None
    resource: str | None
    decision: str | None
    deciding_statement: str | None
    status: int
    error_code: str | None


class AuditLog:
    """Appends entries from any thread; a single writer thread batches them into the database.

    ``append`` is a lock-free deque append (it is on every request's path); the writer wakes up
    every ``interval`` seconds, or at once on ``flush``/``stop``, and writes what has piled up.
    """

    def __init__(self, engine: Engine, *, interval: float = 0.2, max_pending: int = 200_000) -> None:
        self._engine = engine
        self._interval = interval
        self._max_pending = max_pending
        self._pending: deque[AuditEntry] = deque()
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._written = 0
        self._appended = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="openmwaa-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join(timeout=10)
            self._thread = None
        self._drain()

    def append(self, entry: AuditEntry) -> None:
        if self._thread is None:
            self._write([entry])
            return
        if len(self._pending) >= self._max_pending:
            log.error("audit backlog full: writing synchronously")
            self._drain()
        self._pending.append(entry)
        self._appended += 1

    def flush(self) -> None:
        """Block until everything appended so far is written (tests and `openmwaa audit`)."""
        if self._thread is None:
            self._drain()
            return
        target = self._appended
        with self._flushed:
            self._wake.set()
            self._flushed.wait_for(lambda: self._written >= target, timeout=10)

    def query(
        self,
        *,
        since: float | None = None,
        after_id: int | None = None,
        principal: str | None = None,
        action: str | None = None,
        decision: str | None = None,
        limit: int = 1000,
    ) -> Iterator[tuple[int, AuditEntry]]:
        statement = select(AuditRow).order_by(AuditRow.id).limit(limit)
        if since is not None:
            statement = statement.where(AuditRow.time >= since)
        if after_id is not None:
            statement = statement.where(AuditRow.id > after_id)
        if principal:
            statement = statement.where(AuditRow.principal_arn == principal)
        if action:
            statement = statement.where(AuditRow.action == action)
        if decision:
            statement = statement.where(AuditRow.decision == decision)
        with Session(self._engine) as session:
            for row in session.scalars(statement):
                yield (
                    row.id,
                    AuditEntry(
                        time=row.time,
                        request_id=row.request_id,
                        principal_arn=row.principal_arn,
                        source_ip=row.source_ip,
                        action=row.action,
                        resource=row.resource,
                        decision=row.decision,
                        deciding_statement=row.deciding_statement,
                        status=row.status,
                        error_code=row.error_code,
                    ),
                )

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        batch: list[AuditEntry] = []
        while self._pending:
            try:
                batch.append(self._pending.popleft())
            except IndexError:
                break
        if batch:
            try:
                self._write(batch)
            except Exception:
                log.exception("could not write %d audit entries", len(batch))
        with self._flushed:
            self._written += len(batch)
            self._flushed.notify_all()

    def _write(self, entries: list[AuditEntry]) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(insert(AuditRow), [e.__dict__ for e in entries])
