"""A migrated SQLite metadata database per runtime, copied into each new environment.

``airflow db migrate`` on an empty SQLite file takes about 5 s (most of it importing Airflow),
and every new environment of a runtime would get the same result. So the first new SQLite
environment of a runtime migrates a *template* and every later one copies it (a few
milliseconds). An existing database is never replaced: an environment that already has one,
an upgrade to another Airflow version and every PostgreSQL database still run ``airflow db
migrate`` on their own database.

Where: ``<runtime root>/openmwaa-metadata-template-v<FORMAT>.sqlite``. The runtime directory is
keyed by Airflow version, Python and openmwaa's runtime recipe, exactly what the schema depends
on, and the template goes away with the runtime. It holds no environment's data, so openmwaa
servers sharing a runtime cache may share it.

Built atomically: ``airflow db migrate`` runs in a ``.tmp-metadata-template-*`` directory
beside it, the result is checked (integrity, one alembic revision), switched to a rollback
journal (one self-contained file), fsynced and renamed into place. A crash mid-way leaves only a
temporary directory, which is never taken for the template and is removed by the next build.
A file lock makes concurrent creates, from threads or processes, wait for one build; the
template is then only read (opened read-only, file mode 0444) while it is copied with SQLite's
backup API.

What ``airflow db migrate`` writes into a new database, read in Airflow 3.3.1 and 2.11.2
(``airflow/utils/db.py``: ``upgradedb`` -> ``initdb`` -> ``_create_db_from_orm``, then
``add_default_pool_if_not_exists`` and ``synchronize_log_template``) and checked on real
templates: the schema, ``alembic_version``, and two kinds of rows that depend on configuration:

- ``slot_pool``: ``default_pool`` with ``[core] default_pool_task_slot_count`` slots (128 by
  default). When an environment sets that option as a plain integer the copy is fixed up with
  the same value; set through ``_CMD``/``_SECRET`` or not an integer, the environment migrates.
- ``log_template``: rows from ``[logging] log_filename_template`` and ``[elasticsearch]
  log_id_template``. Either option set: the environment migrates.

Also configuration-dependent: Airflow 3's external DB managers, whose tables migrate creates
(``[database] external_db_managers``, providers declaring ``db-managers``, the auth manager's
own; openmwaa's auth manager has none). When the option is set, or the environment's
requirements or plugins bring an Airflow provider distribution, the environment migrates.
``AIRFLOW_CONFIG`` or an ``airflow.cfg`` already in the environment's home could set any of the
above: the environment migrates. Airflow 2.11's migrate of a new database skips default
connections (``initdb(load_connections=False)``) and DAG re-serialization; Airflow 3 creates no
connections either. Nothing migrate writes is encrypted: no connection or variable rows, so the
template holds nothing tied to a fernet key. It is built with throwaway secrets, examples off
and empty DAG and plugin folders, and only its database file leaves the build directory (not the
``airflow.cfg`` Airflow writes there).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from openmwaa.runtime.airflow_config import env_name
from openmwaa.runtime.errors import DatabaseSetupError

log = logging.getLogger(__name__)

#: Bumped whenever what openmwaa puts into a template changes, so an old one is not reused.
TEMPLATE_FORMAT: Final = 1
STAGING_PREFIX: Final = ".tmp-metadata-template-"
LOCK_NAME: Final = ".metadata-template.lock"
#: The only option the copy can be fixed up for; the others make the environment migrate.
POOL_SLOTS_OPTION: Final = "core.default_pool_task_slot_count"
#: Options whose value ``airflow db migrate`` writes into a new database (see the docstring).
MIGRATE_READS: Final = (
    POOL_SLOTS_OPTION,
    "logging.log_filename_template",
    "elasticsearch.log_id_template",
    "database.external_db_managers",
)
#: Entry point group by which Airflow discovers providers (which may declare DB managers).
PROVIDER_ENTRY_POINT: Final = "apache_airflow_provider"

#: Builds a migrated database inside the given (empty) directory within the timeout; its path.
BuildFn = Callable[[Path, float], Path]


def template_path(runtime_root: Path) -> Path:
    return runtime_root / f"openmwaa-metadata-template-v{TEMPLATE_FORMAT}.sqlite"


def template_unusable_reason(
    env: Mapping[str, str],
    *,
    major: int,
    home: Path,
    database_url: str | None,
    code_dirs: Sequence[Path],
) -> str | None:
    """Why this new environment must run ``airflow db migrate`` itself; None if a copy will do.

    ``env`` is the complete environment of its processes (startup-script exports included),
    ``code_dirs`` the directories its requirements and plugins were installed into.
    """
    if database_url is not None:
        return "the metadata database is not openmwaa's SQLite file"
    if (home / "airflow.db").exists():
        return "the environment already has a metadata database"
    if "AIRFLOW_CONFIG" in env or (home / "airflow.cfg").exists():
        return "an Airflow configuration file may change what migrate writes"
    for option in MIGRATE_READS:
        name = env_name(option)
        for variable in (f"{name}_CMD", f"{name}_SECRET"):
            if variable in env:
                return f"{variable} is set"
        if name in env and option != POOL_SLOTS_OPTION:
            return f"{option} is configured"
    slots = env.get(env_name(POOL_SLOTS_OPTION))
    if slots is not None and _as_int(slots) is None:
        return f"{POOL_SLOTS_OPTION} is not an integer"
    if major >= 3:
        for directory in code_dirs:
            if _has_provider(directory):
                return f"{directory} holds an Airflow provider, which may add tables"
    return None


def pool_slots(env: Mapping[str, str]) -> int | None:
    """The environment's default pool size when it sets one (the copy gets it too)."""
    value = env.get(env_name(POOL_SLOTS_OPTION))
    return None if value is None else _as_int(value)


def ensure_template(target: Path, build: BuildFn, *, timeout: float) -> Path:
    """``target``, built first by ``build`` unless it exists (one build at a time, atomically)."""
    if target.is_file():
        return target
    deadline = time.monotonic() + timeout
    with locked(target.parent / LOCK_NAME, deadline):
        if target.is_file():  # another thread or process built it while we waited
            return target
        for leftover in target.parent.glob(f"{STAGING_PREFIX}*"):  # from a crashed build
            shutil.rmtree(leftover, ignore_errors=True)
        staging = target.parent / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            built = build(staging, max(1.0, deadline - time.monotonic()))
            _seal(built)
            os.chmod(built, 0o444)
            os.replace(built, target)
            _fsync_dir(target.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log.info("built the metadata database template %s", target)
    return target


def copy_template(template: Path, db: Path, *, slots: int | None = None) -> None:
    """Make ``db`` (which must not exist) a private, writable copy of ``template``, in WAL mode."""
    staging = db.with_name(f".{db.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with (
            contextlib.closing(sqlite3.connect(template.resolve().as_uri() + "?mode=ro", uri=True)) as src,
            contextlib.closing(sqlite3.connect(staging)) as dst,
        ):
            src.backup(dst)
            if slots is not None:
                dst.execute("UPDATE slot_pool SET slots = ? WHERE pool = 'default_pool'", (slots,))
                dst.commit()
            # A setting stored in the file; see prepare.use_wal for why.
            dst.execute("PRAGMA journal_mode=WAL")
        for suffix in ("-wal", "-shm"):  # a stale journal must not be replayed into the copy
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        os.replace(staging, db)
    except sqlite3.Error as exc:
        raise DatabaseSetupError(f"Cannot copy the metadata database template {template}: {exc}.") from exc
    finally:
        staging.unlink(missing_ok=True)


def _seal(db: Path) -> None:
    """Check a freshly migrated database and make it one self-contained file on disk."""
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA journal_mode=DELETE")  # folds the WAL into the file
            ok = conn.execute("PRAGMA integrity_check").fetchone()
            revisions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error as exc:
        raise DatabaseSetupError(f"The migrated metadata database template is unusable: {exc}.") from exc
    if ok != ("ok",) or len(revisions) != 1:
        raise DatabaseSetupError(
            f"The migrated metadata database template is unusable (integrity {ok}, revisions {revisions})."
        )
    with db.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked(path: Path, deadline: float) -> Iterator[None]:
    """An exclusive file lock on ``path`` (DatabaseSetupError if not had by ``deadline``)."""
    # flock belongs to the open file description: threads of one process exclude each other too.
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatabaseSetupError(
                        "Timed out waiting for another environment to build the metadata database template."
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _has_provider(directory: Path) -> bool:
    for entry_points in directory.glob("*.dist-info/entry_points.txt"):
        with contextlib.suppress(OSError):
            if PROVIDER_ENTRY_POINT in entry_points.read_text(errors="replace"):
                return True
    return False


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None
