"""In-place Airflow upgrades that can always be undone: a copy of the metadata database first.

Before ``airflow db migrate`` runs for a new Airflow version, the database is copied: SQLite
with SQLite's backup API (``airflow.db.before-upgrade``), PostgreSQL with ``CREATE DATABASE
... TEMPLATE`` (:func:`openmwaa.supervisor.postgres.snapshot_database`). Once the copy is
complete a journal, ``<home>/upgrade.json``, records the upgrade. The journal is what makes an
interrupted upgrade safe: while it exists the database may be half-migrated, and the copy is
the database as it was before. An upgrade that fails puts the copy back; one that is
interrupted (openmwaa stopped or killed) is started again from the copy the next time; one
that succeeds removes the journal and then the copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from openmwaa.runtime.beneath import open_beneath
from openmwaa.runtime.errors import DatabaseSetupError
from openmwaa.supervisor import postgres

JOURNAL: Final = "upgrade.json"
SQLITE_DB: Final = "airflow.db"
SQLITE_COPY: Final = "airflow.db.before-upgrade"


@dataclass(frozen=True)
class Upgrade:
    from_version: str
    to_version: str


def read_journal(home: Path) -> Upgrade | None:
    try:
        data = json.loads((home / JOURNAL).read_text())
        return Upgrade(str(data["from"]), str(data["to"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Unreadable: whether the database is half-migrated is unknown, so nothing may run on it.
        raise DatabaseSetupError(f"The upgrade journal {home / JOURNAL} is unreadable ({exc}).") from exc


def write_journal(home: Path, upgrade: Upgrade) -> None:
    tmp = home / (JOURNAL + ".tmp")
    _write_new(home, tmp, json.dumps({"from": upgrade.from_version, "to": upgrade.to_version}).encode())
    os.replace(tmp, home / JOURNAL)
    _fsync_dir(home)


def remove_journal(home: Path) -> None:
    (home / JOURNAL).unlink(missing_ok=True)
    _fsync_dir(home)


class DatabaseCopy:
    """The copy of one environment's metadata database (SQLite file or PostgreSQL database)."""

    def __init__(self, home: Path, database_url: str | None, python: Path | None) -> None:
        """``python``: a runtime's interpreter, which has psycopg2 (PostgreSQL only)."""
        self._home = home
        self._url = database_url if postgres.is_postgres(database_url) else None
        self._python = python

    def take(self) -> None:
        """Copy the database as it is now, replacing an earlier copy."""
        if self._url is not None:
            postgres.snapshot_database(self._need_python(), self._url)
            return
        db, copy = self._home / SQLITE_DB, self._home / SQLITE_COPY
        if db.is_symlink():  # the environment's user owns the home: never copy what a link names
            raise DatabaseSetupError(f"{db} is a symbolic link; it must be the database file itself.")
        tmp = copy.with_name(copy.name + ".tmp")
        tmp.unlink(missing_ok=True)
        try:
            # The backup API copies a consistent database, committed WAL content included.
            with (
                contextlib.closing(sqlite3.connect(db)) as source,
                contextlib.closing(sqlite3.connect(tmp)) as target,
            ):
                source.backup(target)
        except sqlite3.Error as exc:
            raise DatabaseSetupError(f"Cannot copy {db} before the upgrade: {exc}.") from exc
        _fsync(tmp)
        os.replace(tmp, copy)

    def put_back(self) -> None:
        """Replace the database with the copy (which stays until :meth:`discard`)."""
        if self._url is not None:
            postgres.restore_database(self._need_python(), self._url)
            return
        db, copy = self._home / SQLITE_DB, self._home / SQLITE_COPY
        if not copy.exists():
            raise DatabaseSetupError(f"The copy of {db} taken before the upgrade is missing.")
        tmp = db.with_name(db.name + ".restore.tmp")
        with os.fdopen(open_beneath(self._home, copy, os.O_RDONLY), "rb") as source:
            # Owned like the home: by the environment's user when it has one (runtime/isolation).
            _write_new(self._home, tmp, source.read(), owner=self._home.stat())
        # A write-ahead log left by the interrupted migration belongs to the migrated file.
        for suffix in ("-wal", "-shm", "-journal"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        os.replace(tmp, db)
        _fsync_dir(self._home)

    def discard(self) -> None:
        if self._url is not None:
            postgres.drop_snapshot(self._need_python(), self._url)
            return
        (self._home / SQLITE_COPY).unlink(missing_ok=True)

    def _need_python(self) -> Path:
        if self._python is None:
            raise DatabaseSetupError("No Airflow runtime is installed to reach PostgreSQL with.")
        return self._python


def _write_new(home: Path, path: Path, data: bytes, owner: os.stat_result | None = None) -> None:
    """Write ``path`` (in ``home``) afresh and fsync it, following no link planted in the home."""
    path.unlink(missing_ok=True)
    fd = open_beneath(home, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
        os.fchown(fd, owner.st_uid, owner.st_gid)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)
