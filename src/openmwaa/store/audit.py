"""The audit trail: one row per API call, written off the request path in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
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
    #: Errors the policy engine met while deciding (such a decision denies), "; "-joined.
    policy_errors: str | None = None


class AuditLog:
    """Appends entries from any thread; a single writer thread batches them into the database.

    ``append`` is a lock-free deque append (it is on every request's path); the writer wakes up
    every ``interval`` seconds, or at once on ``flush``/``stop``, and writes what has piled up.
    A batch that fails is tried again ``attempts`` times in all (waiting ``retry_delay``, then
    twice that...), then entry by entry so one bad entry does not take the others with it; what
    still fails is counted in :attr:`lost` and logged as an error with the running total.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = 0.2,
        max_pending: int = 200_000,
        attempts: int = 3,
        retry_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._max_pending = max_pending
        self._attempts = max(1, attempts)
        self._retry_delay = retry_delay
        self._sleep = sleep
        self._pending: deque[AuditEntry] = deque()
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        #: Entries taken off the queue (written or lost): what ``flush`` waits for.
        self._handled = 0
        self._written = 0
        self._lost = 0
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
        if self._lost:
            log.error("audit trail: %d entries lost since start (%d written)", self._lost, self._written)

    @property
    def written(self) -> int:
        """Entries written to the database since this log was made."""
        return self._written

    @property
    def backlog(self) -> int:
        """Entries appended and not written yet."""
        return len(self._pending)

    @property
    def lost(self) -> int:
        """Entries that could not be written, even after retrying, since this log was made."""
        return self._lost

    def append(self, entry: AuditEntry) -> None:
        if self._thread is None:
            self._store([entry])
            return
        if len(self._pending) >= self._max_pending:
            # On the caller's thread (the event loop): one attempt, no waiting between retries.
            log.error("audit backlog full: writing synchronously")
            self._drain(attempts=1)
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
            self._flushed.wait_for(lambda: self._handled >= target, timeout=10)

    def query(
        self,
        *,
        since: float | None = None,
        after_id: int | None = None,
        principal: str | None = None,
        action: str | None = None,
        decision: str | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> Iterator[tuple[int, AuditEntry]]:
        order = AuditRow.id.desc() if newest_first else AuditRow.id
        statement = select(AuditRow).order_by(order).limit(limit)
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
                        policy_errors=row.policy_errors,
                    ),
                )

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._drain()

    def _drain(self, attempts: int | None = None) -> None:
        batch: list[AuditEntry] = []
        while self._pending:
            try:
                batch.append(self._pending.popleft())
            except IndexError:
                break
        if batch:
            self._store(batch, attempts)
        with self._flushed:
            self._handled += len(batch)
            self._flushed.notify_all()

    def _store(self, batch: list[AuditEntry], attempts: int | None = None) -> None:
        """Write ``batch``, retrying; count and log what cannot be written."""
        failure: Exception | None = None
        attempts = attempts or self._attempts
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._retry_delay * 2 ** (attempt - 1))
            try:
                self._write(batch)
            except Exception as exc:
                failure = exc
                log.warning(
                    "could not write %d audit entries (attempt %d of %d): %s",
                    len(batch),
                    attempt + 1,
                    attempts,
                    exc,
                )
            else:
                self._written += len(batch)
                return
        lost = len(batch)
        if len(batch) > 1:  # one bad entry must not take the others with it
            for entry in batch:
                try:
                    self._write([entry])
                except Exception as exc:
                    failure = exc
                else:
                    self._written += 1
                    lost -= 1
        if lost:
            self._lost += lost
            log.error(
                "audit trail: %d entries could not be written and are lost (%d lost since start)",
                lost,
                self._lost,
                exc_info=failure,
            )

    def _write(self, entries: list[AuditEntry]) -> None:
        # Core, not an ORM Session: a batch of one (a busy machine's sequential calls) costs ~80 us
        # of CPU instead of ~290, taken from the same process that serves the calls.
        with self._engine.begin() as connection:
            connection.execute(_INSERT, [e.__dict__ for e in entries])


_INSERT = insert(AuditRow)
