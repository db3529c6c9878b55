"""PostgreSQL in production: openmwaa's state and the environments' metadata databases on a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy

from openmwaa.supervisor.postgres_template import TEMPLATE_PREFIX
from tests.e2e.conftest import (
    AIRFLOW3,
    create_environment,
    new_data_dir,
    start_server,
    stop_server,
    trigger_and_wait,
)
from tests.e2e.postgres import pg_bin, postgres_server
from tests.unit.store.test_store_migrations import check_legacy_upgrade

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        pg_bin("initdb") is None, reason="PostgreSQL is not installed (scripts/test installs it)"
    ),
]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def databases(url: str) -> set[str]:
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT datname FROM pg_database"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_environment_on_postgresql(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    data = new_data_dir(tmp_path_factory, "postgres")
    state_url = pg_url.replace("postgresql://", "postgresql+psycopg2://")
    server = start_server(
        data,
        extra_env={"OPENMWAA_DATABASE_URL": state_url, "OPENMWAA_AIRFLOW_DATABASE_URL": pg_url},
    )
    try:
        before = databases(pg_url)
        create_environment(server, "pg-env", AIRFLOW3)
        # The first environment of a runtime also leaves a template database that later ones are
        # copied from (one per runtime, kept: see supervisor/postgres_template.py).
        templates = {d for d in databases(pg_url) - before if d.startswith(TEMPLATE_PREFIX)}
        created = databases(pg_url) - before - templates
        assert len(templates) <= 1, templates
        assert len(created) == 1, f"expected one metadata database for the environment, got {created}"
        assert trigger_and_wait(server, "pg-env", 3, "hello_openmwaa")["state"] == "success"
        assert not (data / "openmwaa.db").exists(), "state must live in PostgreSQL"

        # openmwaa's own state is in PostgreSQL: a restarted server still knows the environment.
        assert stop_server(server) == 0
        server = start_server(
            data,
            extra_env={"OPENMWAA_DATABASE_URL": state_url, "OPENMWAA_AIRFLOW_DATABASE_URL": pg_url},
        )
        mwaa = server.client()
        assert "pg-env" in mwaa.list_environments()["Environments"]

        mwaa.delete_environment(Name="pg-env")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "pg-env" in mwaa.list_environments()["Environments"]:
            time.sleep(1)
        assert "pg-env" not in mwaa.list_environments()["Environments"]
        assert databases(pg_url) - templates == before, "deleting the environment drops its database"
    finally:
        stop_server(server)


def test_a_legacy_state_database_on_postgresql_is_upgraded(pg_url: str) -> None:
    """No Airflow here: openmwaa's schema upgrade (new columns, rows moved) on a real PostgreSQL."""
    admin = sqlalchemy.create_engine(
        pg_url.replace("postgresql://", "postgresql+psycopg2://"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text("CREATE DATABASE openmwaa_legacy_state"))
        url = pg_url.replace("postgresql://", "postgresql+psycopg2://").rsplit("/", 1)[0]
        check_legacy_upgrade(f"{url}/openmwaa_legacy_state")
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text("DROP DATABASE IF EXISTS openmwaa_legacy_state"))
        admin.dispose()
