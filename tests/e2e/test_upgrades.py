"""In-place upgrades (UpdateEnvironment with a new AirflowVersion) on SQLite and on PostgreSQL.

2.10.3 -> 2.11.2 and 3.2.1 -> 3.3.1, one environment per upgrade path and database, all four
created at once. openmwaa is killed (SIGKILL) in the middle of the upgrades and started again:
every environment ends at its new version with its data, or, where the migration fails (a table
the 3.3 migration creates is put in its way on PostgreSQL), rolled back to the database it had
before, never half-migrated.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from openmwaa.runtime.errors import DatabaseSetupError
from openmwaa.supervisor import postgres
from tests.e2e.conftest import (
    OpenMwaaServer,
    describe_processes,
    env_home,
    invoke,
    new_data_dir,
    processes_using,
    request_environment,
    start_server,
    stop_server,
    wait_for_status,
)
from tests.e2e.postgres import pg_bin, postgres_server

pytestmark = pytest.mark.e2e

#: Upgrade paths: major -> (from, to).
PATHS = {2: ("2.10.3", "2.11.2"), 3: ("3.2.1", "3.3.1")}
#: Airflow's migration heads for these versions (``airflow.utils.db._REVISION_HEADS_MAP``;
#: 2.11 added no migration).
HEADS = {"2.10.3": "5f2621c13b39", "2.11.2": "5f2621c13b39", "3.2.1": "1d6611b6ab7c", "3.3.1": "d2f4e1b3c5a7"}
#: Created by the 3.3.0 migration 0118, eight revisions after 3.2's head: a table of that name
#: already there makes the upgrade fail half-way, after 0110-0117 are committed.
CONFLICTING_TABLE = "connection_test_request"
MARKER = {"key": "upgrade_marker", "value": "written before the upgrade"}


@dataclass
class Site:
    """An openmwaa server and its two environments (Airflow 2 and 3) at their old versions."""

    server: OpenMwaaServer
    names: dict[int, str]
    extra_env: dict[str, str]
    pg_url: str | None = None
    retired: bool = False

    def home(self, name: str) -> Path:
        return env_home(self.server, name)

    def kill_and_restart(self) -> None:
        """SIGKILL openmwaa: its Airflow processes and migrations must end with it. Then start it."""
        self.server.process.kill()
        self.server.process.wait()
        for name in self.names.values():
            home = self.home(name)
            try:
                wait_for(lambda h=home: processes_using(h) == [], 60, f"{name}'s processes to end", 0.2)
            except AssertionError as exc:
                raise AssertionError(f"{exc}:\n{describe_processes(processes_using(home))}") from None
        restarted = start_server(self.server.data_dir, port=self.server.port, extra_env=self.extra_env)
        self.server.process = restarted.process

    def retire(self) -> None:
        """SIGTERM openmwaa without waiting: once its test is done, its Airflow processes would
        only take CPU from the next test while they stop. ``close`` waits for the end."""
        if self.server.process.poll() is None:
            self.server.process.send_signal(signal.SIGTERM)
            self.retired = True

    def close(self) -> None:
        """Stop openmwaa and wait. A retired one is only waited for: a second SIGTERM would cut
        its graceful shutdown short."""
        if self.retired:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.process.wait(timeout=60)
        stop_server(self.server)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def open_site(data_dir: Path, prefix: str, extra_env: dict[str, str]) -> Site:
    """Start a server and request both environments (does not wait for them)."""
    server = start_server(data_dir, extra_env=extra_env)
    names = {major: f"{prefix}-{major}" for major in PATHS}
    bucket = f"bucket-{prefix}"
    server.make_bucket(bucket)
    for major, name in names.items():
        request_environment(server, name, PATHS[major][0], bucket)
    return Site(server, names, extra_env)


def wait_available(site: Site) -> None:
    mwaa = site.server.client()
    for name in site.names.values():
        env = wait_for_status(mwaa, name, {"AVAILABLE", "CREATE_FAILED"})
        assert env["Status"] == "AVAILABLE", f"{name}: {env.get('LastUpdate')}\n{site.server.log_tail()}"
        invoke(site.server, name, "/variables", "POST", Body=MARKER)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str | None]:
    """A private PostgreSQL server, None where PostgreSQL is not installed."""
    if pg_bin("initdb") is None:
        yield None
        return
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory, pg_url: str | None) -> Iterator[dict[str, Site]]:
    """Both servers, their four environments created concurrently."""
    with contextlib.ExitStack() as stack:
        found: dict[str, Site] = {}
        sqlite_site = open_site(new_data_dir(tmp_path_factory, "upgrade-sqlite"), "up-lite", {})
        stack.callback(sqlite_site.close)
        found["sqlite"] = sqlite_site
        if pg_url is not None:
            pg_site = open_site(
                new_data_dir(tmp_path_factory, "upgrade-pg"),
                "up-pg",
                {"OPENMWAA_AIRFLOW_DATABASE_URL": pg_url},
            )
            pg_site.pg_url = pg_url
            stack.callback(pg_site.close)
            found["postgresql"] = pg_site
        for site in found.values():
            wait_available(site)
        yield found


# Reading an environment's metadata database ---------------------------------------------------


def pg_engine(server_url: str, database: str) -> sqlalchemy.Engine:
    base = server_url.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0]
    return sqlalchemy.create_engine(f"{base}/{database}", poolclass=sqlalchemy.pool.NullPool)


def pg_databases(server_url: str) -> set[str]:
    with pg_engine(server_url, "postgres").connect() as conn:
        return {row[0] for row in conn.execute(sqlalchemy.text("SELECT datname FROM pg_database"))}


def pg_database_of(server_url: str, name: str) -> str:
    prefix = "openmwaa_" + name.replace("-", "_") + "_"
    (found,) = [d for d in pg_databases(server_url) if d.startswith(prefix) and "before_upgrade" not in d]
    return found


def run_sql(site: Site, name: str, statement: str) -> list[Any]:
    if site.pg_url is not None:
        with pg_engine(site.pg_url, pg_database_of(site.pg_url, name)).begin() as conn:
            result = conn.execute(sqlalchemy.text(statement))
            return list(result) if result.returns_rows else []
    with contextlib.closing(sqlite3.connect(site.home(name) / "airflow.db", timeout=30)) as conn:
        rows = conn.execute(statement).fetchall()
        conn.commit()
        return rows


def revision(site: Site, name: str) -> str:
    (row,) = run_sql(site, name, "SELECT version_num FROM alembic_version")
    return str(row[0])


def xcom_columns(site: Site, name: str) -> set[str]:
    if site.pg_url is not None:
        rows = run_sql(
            site, name, "SELECT column_name FROM information_schema.columns WHERE table_name = 'xcom'"
        )
        return {str(r[0]) for r in rows}
    return {str(r[1]) for r in run_sql(site, name, "PRAGMA table_info(xcom)")}


def test_postgresql_copy_restore_and_drop(pg_url: str | None) -> None:
    """The copy taken before an upgrade, on a real server (no Airflow: any Python with psycopg2)."""
    if pg_url is None:
        pytest.skip("PostgreSQL is not installed (scripts/test installs it)")
    python = Path(sys.executable)
    url = pg_url.rsplit("/", 1)[0] + "/openmwaa_copy_test"
    postgres.ensure_database(python, url)
    with pg_engine(pg_url, "openmwaa_copy_test").begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE kept (v TEXT)"))
        conn.execute(sqlalchemy.text("INSERT INTO kept VALUES ('before')"))
    # A connection left open (as a killed migration's could be) must not block the copy.
    lingering = pg_engine(pg_url, "openmwaa_copy_test").connect()
    lingering.execute(sqlalchemy.text("SELECT 1"))
    try:
        postgres.snapshot_database(python, url)
    finally:
        with contextlib.suppress(sqlalchemy.exc.DBAPIError):
            lingering.close()
    assert postgres.snapshot_name(url) in pg_databases(pg_url)
    with pg_engine(pg_url, "openmwaa_copy_test").begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE kept SET v = 'half-migrated'"))
        conn.execute(sqlalchemy.text("CREATE TABLE added_by_migration (v TEXT)"))
    postgres.restore_database(python, url)
    with pg_engine(pg_url, "openmwaa_copy_test").connect() as conn:
        assert list(conn.execute(sqlalchemy.text("SELECT v FROM kept"))) == [("before",)]
        tables = conn.execute(sqlalchemy.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        assert {row[0] for row in tables} == {"kept"}
    postgres.restore_database(python, url)  # again (a restart during the restore): same result
    postgres.drop_snapshot(python, url)
    assert postgres.snapshot_name(url) not in pg_databases(pg_url)
    with pytest.raises(DatabaseSetupError, match="does not exist"):
        postgres.restore_database(python, url)
    postgres.snapshot_database(python, url)
    postgres.drop_database(python, url)  # a deleted environment leaves no copy either
    assert not {"openmwaa_copy_test", postgres.snapshot_name(url)} & pg_databases(pg_url)


# Checks --------------------------------------------------------------------------------------


def assert_runs(site: Site, name: str, version: str) -> None:
    """Airflow ``version`` serves the environment, with the data written before the upgrade."""
    reported = invoke(site.server, name, "/version")["RestApiResponse"]["version"]
    assert reported == version
    variable = invoke(site.server, name, f"/variables/{MARKER['key']}")["RestApiResponse"]
    assert variable["value"] == MARKER["value"]
    assert revision(site, name) == HEADS[version]
    assert not (site.home(name) / "upgrade.json").exists(), "the upgrade's journal is left behind"
    assert not (site.home(name) / "airflow.db.before-upgrade").exists()
    if site.pg_url is not None:
        assert not [d for d in pg_databases(site.pg_url) if d.endswith("_before_upgrade")]


def upgrade_killing_openmwaa_midway(site: Site) -> None:
    """UpdateEnvironment on both; SIGKILL openmwaa while the Airflow 3 migration runs; restart."""
    mwaa = site.server.client()
    for major, name in site.names.items():
        mwaa.update_environment(Name=name, AirflowVersion=PATHS[major][1])
    # The journal exists from the copy's completion until the upgraded Airflow is healthy.
    journal = site.home(site.names[3]) / "upgrade.json"
    wait_for(journal.exists, 600, "the Airflow 3 upgrade to begin", interval=0.1)
    site.kill_and_restart()


def test_upgrades_on_sqlite_finish_after_openmwaa_is_killed_midway(sites: dict[str, Site]) -> None:
    site = sites["sqlite"]
    upgrade_killing_openmwaa_midway(site)
    mwaa = site.server.client()
    for major, name in site.names.items():
        env = wait_for_status(mwaa, name, {"AVAILABLE", "UPDATE_FAILED", "UNAVAILABLE"})
        assert env["Status"] == "AVAILABLE", f"{name}: {env.get('LastUpdate')}\n{site.server.log_tail()}"
        assert env["AirflowVersion"] == PATHS[major][1]
        assert env["LastUpdate"]["Status"] == "SUCCESS"
        assert_runs(site, name, PATHS[major][1])
    site.retire()  # nothing after this test uses it


def test_upgrades_on_postgresql_roll_back_a_failed_migration_also_after_a_kill(
    sites: dict[str, Site],
) -> None:
    if "postgresql" not in sites:
        pytest.skip("PostgreSQL is not installed (scripts/test installs it)")
    site = sites["postgresql"]
    af2, af3 = site.names[2], site.names[3]
    old3, new3 = PATHS[3]
    run_sql(site, af3, f"CREATE TABLE {CONFLICTING_TABLE} (id INTEGER)")
    upgrade_killing_openmwaa_midway(site)
    mwaa = site.server.client()

    env = wait_for_status(mwaa, af2, {"AVAILABLE", "UPDATE_FAILED", "UNAVAILABLE"})
    assert env["Status"] == "AVAILABLE", f"{af2}: {env.get('LastUpdate')}\n{site.server.log_tail()}"
    assert_runs(site, af2, PATHS[2][1])

    # The upgrade, taken up again after the restart, fails at 0118: rolled back, not half-migrated.
    env = wait_for_status(mwaa, af3, {"AVAILABLE", "UPDATE_FAILED", "UNAVAILABLE"})
    assert env["Status"] == "UPDATE_FAILED", f"{af3}: {env.get('LastUpdate')}\n{site.server.log_tail()}"
    assert env["AirflowVersion"] == old3
    assert env["LastUpdate"]["Error"]["ErrorCode"] == "DATABASE_SETUP_FAILED"
    assert "airflow db migrate failed" in env["LastUpdate"]["Error"]["ErrorMessage"]
    assert "dag_result" not in xcom_columns(site, af3), "migration 0110 was not rolled back"
    assert_runs(site, af3, old3)

    # With the obstacle gone, the same upgrade succeeds.
    run_sql(site, af3, f"DROP TABLE {CONFLICTING_TABLE}")
    mwaa.update_environment(Name=af3, AirflowVersion=new3)
    env = wait_for_status(mwaa, af3, {"AVAILABLE", "UPDATE_FAILED", "UNAVAILABLE"})
    assert env["Status"] == "AVAILABLE", f"{af3}: {env.get('LastUpdate')}\n{site.server.log_tail()}"
    assert_runs(site, af3, new3)
    assert "dag_result" in xcom_columns(site, af3)
