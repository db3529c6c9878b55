"""A state database written by an older openmwaa is upgraded in place when it is opened.

``check_legacy_upgrade`` takes any database URL; here it runs on SQLite, and the PostgreSQL
end-to-end module runs it on a real server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table, create_engine, insert, inspect

from openmwaa.store.db import open_engine
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord, EnvironmentRepository
from openmwaa.store.migrations import ADDED_ENVIRONMENT_COLUMNS, LEGACY_UPDATE_ERROR_KEY
from openmwaa.store.models import Base

CRASH = {"ErrorCode": "COMPONENT_CRASHED", "ErrorMessage": "the scheduler keeps crashing"}
UPDATE_ERROR = {"ErrorCode": "REQUIREMENTS_INSTALL_FAILED", "ErrorMessage": "pip said no"}
FAILED_UPDATE = {"Status": "FAILED", "CreatedAt": 2.0, "Source": "UPDATE"}
CREATED = {"Status": "SUCCESS", "CreatedAt": 1.0, "Source": "CREATE"}

#: name -> (status, LastUpdate as the older release stored it)
LEGACY_ROWS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "crashed-after-failed-update": (
        "UNAVAILABLE",
        {**FAILED_UPDATE, "Error": CRASH, LEGACY_UPDATE_ERROR_KEY: UPDATE_ERROR},
    ),
    "crashed": ("UNAVAILABLE", {**CREATED, "Error": CRASH}),
    "serving": ("AVAILABLE", CREATED),
    "starting": ("CREATING", None),
}


def create_legacy_schema(url: str) -> None:
    """The environments table as the first release created it (no later columns), with rows."""
    current = Base.metadata.tables["environments"]
    legacy = MetaData()
    table = Table(
        "environments",
        legacy,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in current.columns
            if c.name not in ADDED_ENVIRONMENT_COLUMNS
        ),
    )
    engine = create_engine(url)
    try:
        legacy.create_all(engine)
        with engine.begin() as connection:
            for name, (status, last_update) in LEGACY_ROWS.items():
                connection.execute(
                    insert(table).values(
                        account_id="123456789012",
                        region="us-east-1",
                        name=name,
                        arn=f"arn:aws:airflow:us-east-1:123456789012:environment/{name}",
                        status=status,
                        created_at=1.0,
                        config=json.dumps({"AirflowVersion": "3.3.1"}),
                        previous_config=None,
                        last_update=json.dumps(last_update) if last_update else None,
                        tags="{}",
                        secrets="{}",
                    )
                )
    finally:
        engine.dispose()


def _get(repo: EnvironmentRepository, name: str) -> EnvironmentRecord:
    found = repo.get(EnvironmentKey("123456789012", "us-east-1", name))
    assert found is not None
    return found


def check_legacy_upgrade(url: str) -> None:
    """Open a legacy database twice; both times the records read as the current release writes them."""
    create_legacy_schema(url)
    for _ in range(2):  # the second open finds nothing left to do
        engine = open_engine(url)
        try:
            columns = {c["name"] for c in inspect(engine).get_columns("environments")}
            assert set(ADDED_ENVIRONMENT_COLUMNS) <= columns
            repo = EnvironmentRepository(engine)
            hidden = _get(repo, "crashed-after-failed-update")
            assert hidden.last_update == {**FAILED_UPDATE, "Error": CRASH}
            assert hidden.failed_update_error == UPDATE_ERROR
            assert hidden.resume_status == "UPDATE_FAILED"
            crashed = _get(repo, "crashed")
            assert (crashed.last_update, crashed.failed_update_error) == ({**CREATED, "Error": CRASH}, None)
            assert crashed.resume_status == "AVAILABLE"
            serving = _get(repo, "serving")
            assert (serving.status, serving.last_update, serving.resume_status) == (
                "AVAILABLE",
                CREATED,
                None,
            )
            starting = _get(repo, "starting")
            assert (starting.last_update, starting.resume_status, starting.failed_update_error) == (
                None,
                None,
                None,
            )
        finally:
            engine.dispose()


def test_a_legacy_sqlite_state_database_is_upgraded(tmp_path: Path) -> None:
    check_legacy_upgrade(f"sqlite:///{tmp_path / 'openmwaa.db'}")
