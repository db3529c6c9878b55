"""The audit trail: one row per API call, written off the request path in batches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from openmwaa.store.models import AuditRow


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
    """Appends entries from any thread; a single writer thread batches them into the database."""

    _STOP = object()

    def __init__(self, engine: Engine, *, batch: int = 500) -> None:
        self._engine = engine
        self._batch = batch
        self._queue: queue.Queue[object] = queue.Queue(maxsize=100_000)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="openmwaa-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(self._STOP)
            self._thread.join(timeout=10)
            self._thread = None

    def append(self, entry: AuditEntry) -> None:
        if self._thread is None:
            self._write([entry])
        else:
            self._queue.put(entry)

    def flush(self) -> None:
        """Block until everything appended so far is written (tests and `openmwaa audit`)."""
        done = threading.Event()
        if self._thread is None:
            return
        self._queue.put(done)
        done.wait(timeout=10)

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
        while True:
            item = self._queue.get()
            pending: list[AuditEntry] = []
            events: list[threading.Event] = []
            stop = False
            while True:
                if item is self._STOP:
                    stop = True
                elif isinstance(item, threading.Event):
                    events.append(item)
                elif isinstance(item, AuditEntry):
                    pending.append(item)
                if stop or len(pending) >= self._batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if pending:
                self._write(pending)
            for event in events:
                event.set()
            if stop:
                return

    def _write(self, entries: list[AuditEntry]) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(insert(AuditRow), [e.__dict__ for e in entries])
