"""Environment records and their repository."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

from sqlalchemy import CursorResult, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openmwaa.store.models import EnvironmentRow


class EnvironmentExistsError(Exception):
    """An environment of that name already exists in the account and region."""


@dataclass(frozen=True)
class EnvironmentKey:
    account_id: str
    region: str
    name: str

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> EnvironmentKey:
        account_id, region, name = text.split("/", 2)
        return cls(account_id, region, name)


@dataclass(frozen=True)
class EnvironmentRecord:
    key: EnvironmentKey
    arn: str
    status: str
    created_at: float
    config: Mapping[str, Any]
    previous_config: Mapping[str, Any] | None
    last_update: Mapping[str, Any] | None
    tags: Mapping[str, str]
    secrets: Mapping[str, str] = field(repr=False)
    #: While MAINTENANCE or UNAVAILABLE: the status it returns to once Airflow is healthy again.
    resume_status: str | None = None
    #: While UNAVAILABLE after a failed update: that update's LastUpdate.Error, shown again on
    #: recovery (never returned by the API meanwhile).
    failed_update_error: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.key.name


_JSON_COLUMNS = ("config", "previous_config", "last_update", "tags", "failed_update_error")
#: Marks a secrets column written through the cipher (older rows hold plain JSON).
_SEALED: Final = "sealed:"


class SecretCipher(Protocol):
    """Encryption at rest for the environments' secrets (openmwaa's ``SecretBox``)."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class _Codec:
    """Rows <-> records; the secrets column sealed with the cipher when there is one."""

    def __init__(self, cipher: SecretCipher | None) -> None:
        self._cipher = cipher

    def record(self, row: EnvironmentRow) -> EnvironmentRecord:
        return EnvironmentRecord(
            key=EnvironmentKey(row.account_id, row.region, row.name),
            arn=row.arn,
            status=row.status,
            created_at=row.created_at,
            config=json.loads(row.config),
            previous_config=json.loads(row.previous_config) if row.previous_config else None,
            last_update=json.loads(row.last_update) if row.last_update else None,
            tags=json.loads(row.tags),
            secrets=self.open_secrets(row.secrets),
            resume_status=row.resume_status,
            failed_update_error=json.loads(row.failed_update_error) if row.failed_update_error else None,
        )

    def columns(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for column, value in changes.items():
            if column == "secrets":
                out[column] = self.seal_secrets(value)
            elif column in _JSON_COLUMNS:
                out[column] = None if value is None else json.dumps(value, sort_keys=True)
            else:
                out[column] = value
        return out

    def seal_secrets(self, secrets: Mapping[str, str]) -> str:
        text = json.dumps(dict(secrets), sort_keys=True)
        return text if self._cipher is None else _SEALED + self._cipher.encrypt(text)

    def open_secrets(self, stored: str) -> dict[str, str]:
        if not self.is_sealed(stored):
            return dict(json.loads(stored))
        if self._cipher is None:
            raise ValueError("the environment's secrets are sealed and no key was given")
        return dict(json.loads(self._cipher.decrypt(stored.removeprefix(_SEALED))))

    @property
    def seals(self) -> bool:
        return self._cipher is not None

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(_SEALED)


class EnvironmentRepository:
    """All reads and writes of environments. Each write is one short transaction.

    Reads by key and by ARN are served from a write-through cache: this process is the only
    writer of environment rows, and InvokeRestApi reads its environment on every call, on the
    event loop, where a database round trip would stall every other request. Once every row has
    been read (:meth:`load_all`, or the first miss), the cache is complete: a miss, an unknown
    name, is answered from memory too.
    """

    def __init__(self, engine: Engine, cipher: SecretCipher | None = None) -> None:
        """``cipher`` seals each environment's secrets at rest (plain JSON without one: tests)."""
        self._engine = engine
        self._codec = _Codec(cipher)
        self._cache: dict[EnvironmentKey, EnvironmentRecord] = {}
        self._keys_by_arn: dict[str, EnvironmentKey] = {}
        #: Every row is in the cache: a key or ARN that is not there does not exist.
        self._complete = False
        # Held around every database access that fills or changes the cache, so a slow reader
        # can never put back a record older than the last write.
        self._lock = threading.RLock()

    def _remember(self, record: EnvironmentRecord | None, key: EnvironmentKey) -> EnvironmentRecord | None:
        # Replaced in place, never popped first: a reader on another thread must not see a gap.
        previous = self._cache.get(key)
        if record is None:
            self._cache.pop(key, None)
        else:
            self._cache[key] = record
            self._keys_by_arn[record.arn] = key
        if previous is not None and (record is None or previous.arn != record.arn):
            self._keys_by_arn.pop(previous.arn, None)
        return record

    def load_all(self) -> None:
        """Read every row into the cache once; afterwards no read by key or ARN touches the database."""
        with self._lock:
            if self._complete:
                return
            with Session(self._engine) as session:
                rows = session.scalars(select(EnvironmentRow)).all()
                records = [self._codec.record(row) for row in rows]
            for record in records:
                self._remember(record, record.key)
            self._complete = True

    def insert(self, record: EnvironmentRecord) -> None:
        row = EnvironmentRow(
            account_id=record.key.account_id,
            region=record.key.region,
            name=record.key.name,
            arn=record.arn,
            status=record.status,
            created_at=record.created_at,
            resume_status=record.resume_status,
            **self._codec.columns(
                {
                    "config": record.config,
                    "previous_config": record.previous_config,
                    "last_update": record.last_update,
                    "tags": record.tags,
                    "secrets": record.secrets,
                    "failed_update_error": record.failed_update_error,
                }
            ),
        )
        with self._lock:
            try:
                with Session(self._engine) as session, session.begin():
                    session.add(row)
            except IntegrityError as exc:
                raise EnvironmentExistsError(str(record.key)) from exc
            self._remember(record, record.key)

    def get(self, key: EnvironmentKey) -> EnvironmentRecord | None:
        cached = self._cache.get(key)
        if cached is None and not self._complete:
            self.load_all()
            cached = self._cache.get(key)
        return cached

    def get_by_arn(self, arn: str) -> EnvironmentRecord | None:
        key = self._keys_by_arn.get(arn)
        if key is None and not self._complete:
            self.load_all()
            key = self._keys_by_arn.get(arn)
        return self._cache.get(key) if key is not None else None

    def list_page(
        self, account_id: str, region: str, *, after: str | None, limit: int
    ) -> list[EnvironmentRecord]:
        """Up to ``limit`` environments ordered by name, strictly after ``after``."""
        query = (
            select(EnvironmentRow)
            .where(EnvironmentRow.account_id == account_id, EnvironmentRow.region == region)
            .order_by(EnvironmentRow.name)
            .limit(limit)
        )
        if after is not None:
            query = query.where(EnvironmentRow.name > after)
        with Session(self._engine) as session:
            return [self._codec.record(r) for r in session.scalars(query)]

    def list_all(self) -> list[EnvironmentRecord]:
        with Session(self._engine) as session:
            rows = session.scalars(select(EnvironmentRow).order_by(EnvironmentRow.id))
            return [self._codec.record(r) for r in rows]

    def change(
        self, key: EnvironmentKey, *, expect: Collection[str] | None = None, **changes: Any
    ) -> EnvironmentRecord | None:
        """Apply ``changes`` atomically if the status is one of ``expect``; the new record, or None."""
        statement = update(EnvironmentRow).where(
            EnvironmentRow.account_id == key.account_id,
            EnvironmentRow.region == key.region,
            EnvironmentRow.name == key.name,
        )
        if expect is not None:
            statement = statement.where(EnvironmentRow.status.in_(list(expect)))
        with self._lock:
            with Session(self._engine) as session, session.begin():
                result = cast(
                    CursorResult[Any], session.execute(statement.values(**self._codec.columns(changes)))
                )
                if result.rowcount == 0:
                    return None
                row = session.scalars(self._select(key)).one()
                record = self._codec.record(row)
            return self._remember(record, key)

    def seal_plaintext_secrets(self) -> int:
        """Rewrite rows written before secrets were sealed (or without a cipher); how many."""
        if not self._codec.seals:
            return 0
        with self._lock, Session(self._engine) as session, session.begin():
            rows = session.scalars(select(EnvironmentRow)).all()
            rows = [r for r in rows if not self._codec.is_sealed(r.secrets)]
            for row in rows:
                row.secrets = self._codec.seal_secrets(self._codec.open_secrets(row.secrets))
            return len(rows)

    def delete(self, key: EnvironmentKey) -> bool:
        with self._lock:
            with Session(self._engine) as session, session.begin():
                result = cast(
                    CursorResult[Any],
                    session.execute(
                        delete(EnvironmentRow).where(
                            EnvironmentRow.account_id == key.account_id,
                            EnvironmentRow.region == key.region,
                            EnvironmentRow.name == key.name,
                        )
                    ),
                )
            self._remember(None, key)
            return bool(result.rowcount)

    @staticmethod
    def _select(key: EnvironmentKey) -> Any:
        return select(EnvironmentRow).where(
            EnvironmentRow.account_id == key.account_id,
            EnvironmentRow.region == key.region,
            EnvironmentRow.name == key.name,
        )
