"""Upgrades that can be undone: the copy, the journal, and the provisioner's steps on real SQLite.

``airflow db migrate`` is a fake that migrates in two committed steps and can fail between
them, leaving a half-migrated database behind, as a real migration that fails does.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from pathlib import Path

import pytest

from openmwaa.runtime.airflow_config import Ports
from openmwaa.runtime.errors import DatabaseSetupError
from openmwaa.runtime.installer import Runtime, RuntimeManager
from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.supervisor import upgrade
from openmwaa.supervisor.prepare import PreparedEnvironment
from openmwaa.supervisor.provision import LocalProvisioner
from openmwaa.supervisor.spec import EnvironmentSpec

FAKE_MIGRATE = """
import os, sqlite3, sys
db = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///").split("?")[0]
conn = sqlite3.connect(db)
conn.execute("CREATE TABLE step_one (n INTEGER)")
conn.commit()
if os.environ.get("FAKE_FAIL"):
    sys.exit("step two failed")
conn.execute("UPDATE version SET v = ?", (os.environ["FAKE_TO"],))
conn.commit()
"""


def runtime(tmp_path: Path, version: str) -> Runtime:
    root = tmp_path / f"runtime-{version}"
    root.mkdir(exist_ok=True)
    (root / "migrate.py").write_text(FAKE_MIGRATE)
    python = root / "python"
    # The real interpreter runs the parent-death shim (``-S -c``), which execs this again.
    shim = f'[ "$1" = -S ] && exec {sys.executable} "$@"'
    python.write_text(f"#!/bin/sh\n{shim}\nexec {sys.executable} {root / 'migrate.py'}\n")
    python.chmod(0o755)
    return Runtime(version, 3, root, python, root)


def prepared(tmp_path: Path, version: str, *, fail: bool = False) -> PreparedEnvironment:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True, exist_ok=True)
    spec = EnvironmentSpec(
        key="1/r/env",
        name="env",
        airflow_version=version,
        home=home,
        dags_dir=tmp_path / "dags",
        plugins_zip=None,
        requirements_file=None,
        startup_script=None,
        airflow_config={},
        secrets=EnvironmentSecrets.generate(),
    )
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}", "FAKE_TO": version}
    if fail:
        env["FAKE_FAIL"] = "1"
    return PreparedEnvironment(spec, runtime(tmp_path, version), Ports(1, 2, 3), env, None, home / "plugins")


def old_database(home: Path) -> None:
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE version (v TEXT)")
        conn.execute("INSERT INTO version VALUES ('3.2.1')")
        conn.execute("CREATE TABLE dag_run (id INTEGER)")
        conn.executemany("INSERT INTO dag_run VALUES (?)", [(i,) for i in range(100)])
        conn.commit()


def contents(home: Path) -> dict[str, list[tuple[object, ...]]]:
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in sorted(tables)}  # noqa: S608


@pytest.fixture
def provisioner(tmp_path: Path) -> LocalProvisioner:
    return LocalProvisioner(RuntimeManager(tmp_path / "no-runtimes"))


def test_a_successful_upgrade_migrates_and_leaves_no_copy(
    tmp_path: Path, provisioner: LocalProvisioner
) -> None:
    new = prepared(tmp_path, "3.3.1")
    home = new.spec.home
    old_database(home)
    provisioner.begin_upgrade(new, "3.2.1", 60)
    assert upgrade.read_journal(home) == upgrade.Upgrade("3.2.1", "3.3.1")
    assert (home / upgrade.SQLITE_COPY).exists()
    assert contents(home)["version"] == [("3.3.1",)]
    provisioner.finish_upgrade(new.spec)
    assert upgrade.read_journal(home) is None
    assert not (home / upgrade.SQLITE_COPY).exists()


def test_a_failed_migration_is_rolled_back_to_the_database_as_it_was(
    tmp_path: Path, provisioner: LocalProvisioner
) -> None:
    new = prepared(tmp_path, "3.3.1", fail=True)
    home = new.spec.home
    old_database(home)
    before = contents(home)
    with pytest.raises(DatabaseSetupError, match="step two failed"):
        provisioner.begin_upgrade(new, "3.2.1", 60)
    assert "step_one" in contents(home), "the fake should have left a half-migrated database"
    provisioner.roll_back_upgrade(new.spec)
    assert contents(home) == before
    assert upgrade.read_journal(home) is None
    assert not (home / upgrade.SQLITE_COPY).exists()


def test_an_interrupted_upgrade_starts_again_from_the_copy(
    tmp_path: Path, provisioner: LocalProvisioner
) -> None:
    home = prepared(tmp_path, "3.3.1").spec.home
    old_database(home)
    before = contents(home)
    with pytest.raises(DatabaseSetupError):
        provisioner.begin_upgrade(prepared(tmp_path, "3.3.1", fail=True), "3.2.1", 60)
    # openmwaa died here: the journal and the half-migrated database are what the next one finds.
    (home / "airflow.db-wal").write_bytes(b"left by the killed migration")
    again = prepared(tmp_path, "3.3.1")
    provisioner.begin_upgrade(again, "3.2.1", 60)
    # Migrated from the copy: the fake's CREATE TABLE would have failed on the half-migrated file.
    after = contents(home)
    assert after["version"] == [("3.3.1",)] and after["dag_run"] == before["dag_run"]


def test_a_resume_settles_an_interrupted_upgrade_by_the_version_it_runs(
    tmp_path: Path, provisioner: LocalProvisioner
) -> None:
    home = prepared(tmp_path, "3.3.1").spec.home
    old_database(home)
    before = contents(home)
    with pytest.raises(DatabaseSetupError):
        provisioner.begin_upgrade(prepared(tmp_path, "3.3.1", fail=True), "3.2.1", 60)
    # The old version is to run: the upgrade is undone.
    assert provisioner.resume_upgrade(prepared(tmp_path, "3.2.1"), 60) is False
    assert contents(home) == before and upgrade.read_journal(home) is None
    # Nothing left to settle.
    assert provisioner.resume_upgrade(prepared(tmp_path, "3.2.1"), 60) is False


def test_a_resume_of_the_new_version_migrates_again(tmp_path: Path, provisioner: LocalProvisioner) -> None:
    home = prepared(tmp_path, "3.3.1").spec.home
    old_database(home)
    with pytest.raises(DatabaseSetupError):
        provisioner.begin_upgrade(prepared(tmp_path, "3.3.1", fail=True), "3.2.1", 60)
    assert provisioner.resume_upgrade(prepared(tmp_path, "3.3.1"), 60) is True
    assert contents(home)["version"] == [("3.3.1",)]


def test_a_journal_of_another_upgrade_is_not_trusted(tmp_path: Path, provisioner: LocalProvisioner) -> None:
    new = prepared(tmp_path, "3.3.1")
    home = new.spec.home
    old_database(home)
    upgrade.write_journal(home, upgrade.Upgrade("3.0.6", "3.2.1"))
    (home / upgrade.SQLITE_COPY).write_bytes(b"not this database")
    provisioner.begin_upgrade(new, "3.2.1", 60)
    assert contents(home)["dag_run"] == [(i,) for i in range(100)]
    assert upgrade.read_journal(home) == upgrade.Upgrade("3.2.1", "3.3.1")


def test_an_unreadable_journal_stops_everything(tmp_path: Path, provisioner: LocalProvisioner) -> None:
    new = prepared(tmp_path, "3.3.1")
    old_database(new.spec.home)
    (new.spec.home / upgrade.JOURNAL).write_text("{not json")
    with pytest.raises(DatabaseSetupError, match="unreadable"):
        provisioner.resume_upgrade(new, 60)


def test_a_rollback_without_its_copy_is_an_error_not_a_silent_success(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    old_database(home)
    with pytest.raises(DatabaseSetupError, match="missing"):
        upgrade.DatabaseCopy(home, None, None).put_back()


def test_the_copy_holds_what_was_committed_to_the_write_ahead_log(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    old_database(home)
    writer = sqlite3.connect(home / "airflow.db")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO dag_run VALUES (100)")
    writer.commit()  # in the -wal file only, while the connection stays open
    try:
        copy = upgrade.DatabaseCopy(home, None, None)
        copy.take()
        writer.execute("DELETE FROM dag_run")
        writer.commit()
    finally:
        writer.close()
    copy.put_back()
    assert len(contents(home)["dag_run"]) == 101


def test_postgresql_copies_are_named_within_its_63_byte_limit() -> None:
    from openmwaa.supervisor.postgres import snapshot_name

    name = "openmwaa_" + "x" * 40 + "_0123456789"
    url = f"postgresql+psycopg2://u@h/{name}"
    copy = snapshot_name(url)
    assert len(copy.encode()) <= 63 and copy.endswith("_before_upgrade") and copy != name
    assert snapshot_name(url.replace("0123456789", "0123456788")) != copy
