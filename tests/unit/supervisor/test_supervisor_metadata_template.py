"""The per-runtime template database: built once, atomically, under a lock; copies the env owns."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from openmwaa.runtime.errors import DatabaseSetupError
from openmwaa.supervisor.metadata_template import (
    LOCK_NAME,
    STAGING_PREFIX,
    copy_template,
    ensure_template,
    pool_slots,
    template_path,
    template_unusable_reason,
)


def make_db(path: Path, *, revision: str | None = "abc123", slots: int = 128) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("CREATE TABLE slot_pool (id INTEGER PRIMARY KEY, pool TEXT, slots INTEGER)")
        if revision is not None:
            conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
        conn.execute("INSERT INTO slot_pool (pool, slots) VALUES ('default_pool', ?)", (slots,))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.commit()
    return path


class FakeBuild:
    def __init__(self, delay: float = 0.0, revision: str | None = "abc123") -> None:
        self.calls = 0
        self.delay = delay
        self.revision = revision
        self._lock = threading.Lock()

    def __call__(self, staging: Path, timeout: float) -> Path:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return make_db(staging / "airflow.db", revision=self.revision)


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql).fetchall()


def test_template_is_built_once_and_reused(tmp_path: Path) -> None:
    build = FakeBuild()
    target = template_path(tmp_path)
    assert ensure_template(target, build, timeout=10) == target
    assert ensure_template(target, build, timeout=10) == target
    assert build.calls == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o444  # only ever read
    assert query(target, "PRAGMA journal_mode") == [("delete",)]  # one self-contained file
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))


def test_concurrent_creates_wait_for_one_build(tmp_path: Path) -> None:
    build = FakeBuild(delay=0.3)
    target = template_path(tmp_path)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_template(target, build, timeout=10)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert build.calls == 1
    assert results == [target] * 4
    assert query(target, "SELECT version_num FROM alembic_version") == [("abc123",)]


def test_a_crashed_build_is_ignored_and_cleaned_up(tmp_path: Path) -> None:
    leftover = tmp_path / f"{STAGING_PREFIX}deadbeef"
    leftover.mkdir()
    (leftover / "airflow.db").write_bytes(b"SQLite format 3\x00 half written")
    build = FakeBuild()
    target = template_path(tmp_path)
    ensure_template(target, build, timeout=10)
    assert build.calls == 1
    assert not leftover.exists()
    assert query(target, "SELECT version_num FROM alembic_version") == [("abc123",)]


def test_a_failed_build_leaves_no_template(tmp_path: Path) -> None:
    def failing(staging: Path, timeout: float) -> Path:
        (staging / "airflow.db").write_bytes(b"partial")
        raise DatabaseSetupError("airflow db migrate failed")

    target = template_path(tmp_path)
    with pytest.raises(DatabaseSetupError):
        ensure_template(target, failing, timeout=10)
    assert not target.exists()
    assert not list(tmp_path.glob(f"{STAGING_PREFIX}*"))
    build = FakeBuild()
    ensure_template(target, build, timeout=10)  # the next create tries again
    assert build.calls == 1


def test_an_unmigrated_result_is_refused(tmp_path: Path) -> None:
    target = template_path(tmp_path)
    with pytest.raises(DatabaseSetupError, match="unusable"):
        ensure_template(target, FakeBuild(revision=None), timeout=10)
    assert not target.exists()


def test_waiting_for_another_builder_times_out(tmp_path: Path) -> None:
    with (tmp_path / LOCK_NAME).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(DatabaseSetupError, match="Timed out"):
            ensure_template(template_path(tmp_path), FakeBuild(), timeout=0.3)
        assert time.monotonic() - started < 5


def test_copy_is_a_private_writable_database_in_wal_mode(tmp_path: Path) -> None:
    (tmp_path / "runtime").mkdir()
    target = ensure_template(template_path(tmp_path / "runtime"), FakeBuild(), timeout=10)
    home = tmp_path / "home"
    home.mkdir()
    db = home / "airflow.db"
    (home / "airflow.db-wal").write_bytes(b"stale journal of an earlier database")
    copy_template(target, db)
    assert db.is_file() and not db.is_symlink()
    assert os.stat(db).st_ino != os.stat(target).st_ino
    assert os.access(db, os.W_OK)
    assert not (home / "airflow.db-wal").exists()
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE slot_pool SET slots = 1")
        conn.commit()
    assert query(target, "SELECT slots FROM slot_pool") == [(128,)]  # the template is untouched
    assert [p.name for p in home.iterdir() if p.name.endswith(".tmp")] == []


def test_copy_takes_the_environments_default_pool_size(tmp_path: Path) -> None:
    target = make_db(tmp_path / "template.sqlite")
    db = tmp_path / "airflow.db"
    copy_template(target, db, slots=7)
    assert query(db, "SELECT pool, slots FROM slot_pool") == [("default_pool", 7)]


def reason(tmp_path: Path, env: dict[str, str], *, major: int = 3, url: str | None = None) -> str | None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return template_unusable_reason(
        env, major=major, home=home, database_url=url, code_dirs=[tmp_path / "site"]
    )


def test_a_plain_environment_uses_the_template(tmp_path: Path) -> None:
    env = {"AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    assert reason(tmp_path, env) is None
    assert pool_slots(env) is None


@pytest.mark.parametrize(
    ("env", "url", "expected"),
    [
        ({}, "postgresql://u@h/db", "not openmwaa's SQLite"),
        ({"AIRFLOW_CONFIG": "/etc/airflow.cfg"}, None, "configuration file"),
        ({"AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE": "{{ ti.dag_id }}.log"}, None, "log_filename_template"),
        ({"AIRFLOW__ELASTICSEARCH__LOG_ID_TEMPLATE": "{dag_id}"}, None, "log_id_template"),
        ({"AIRFLOW__DATABASE__EXTERNAL_DB_MANAGERS": "x.Manager"}, None, "external_db_managers"),
        ({"AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT_CMD": "echo 3"}, None, "_CMD is set"),
        ({"AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "many"}, None, "not an integer"),
    ],
)
def test_configuration_that_changes_what_migrate_writes_means_a_real_migrate(
    tmp_path: Path, env: dict[str, str], url: str | None, expected: str
) -> None:
    found = reason(tmp_path, env, url=url)
    assert found is not None and expected in found


def test_an_integer_default_pool_size_is_fixed_up_instead(tmp_path: Path) -> None:
    env = {"AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "16"}
    assert reason(tmp_path, env) is None
    assert pool_slots(env) == 16


def test_an_existing_database_or_config_file_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "airflow.db").write_bytes(b"")
    assert "already has" in (reason(tmp_path, {}) or "")
    (tmp_path / "home" / "airflow.db").unlink()
    (tmp_path / "home" / "airflow.cfg").write_text("[core]\n")  # e.g. written by a startup script
    assert "configuration file" in (reason(tmp_path, {}) or "")


def test_a_provider_in_requirements_means_a_real_migrate_on_airflow3_only(tmp_path: Path) -> None:
    dist = tmp_path / "site" / "apache_airflow_providers_x-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "entry_points.txt").write_text("[apache_airflow_provider]\nprovider_info = x:get_info\n")
    assert "provider" in (reason(tmp_path, {}, major=3) or "")
    assert reason(tmp_path, {}, major=2) is None  # Airflow 2 has no external DB managers
