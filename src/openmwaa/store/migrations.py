"""Bring a state database written by an older openmwaa up to the current schema.

``create_all`` creates missing tables but never alters an existing one, so each column added
after the first release is added here, and rows written in an older shape are rewritten. Every
step checks before it acts: running it again (at each start) changes nothing.
"""

from __future__ import annotations

import json
from typing import Final

from sqlalchemy import Connection, Engine, inspect, or_, select, update
from sqlalchemy.schema import CreateColumn

from openmwaa.store.models import AuditRow, Base, EnvironmentRow

#: Columns of ``environments`` added after its first release, in the order they were added.
ADDED_ENVIRONMENT_COLUMNS: Final = ("resume_status", "failed_update_error")
#: The same for ``audit_log``.
ADDED_AUDIT_COLUMNS: Final = ("policy_errors",)
#: Where older releases kept a failed update's error while UNAVAILABLE: inside LastUpdate's JSON.
LEGACY_UPDATE_ERROR_KEY: Final = "OpenmwaaFailedUpdateError"


def upgrade_schema(engine: Engine) -> None:
    """Add missing columns, then move data out of the shapes older releases wrote."""
    with engine.begin() as connection:
        _add_missing_columns(connection)
        _move_legacy_update_errors(connection)


def _add_missing_columns(connection: Connection) -> None:
    added = (
        (EnvironmentRow.__tablename__, ADDED_ENVIRONMENT_COLUMNS),
        (AuditRow.__tablename__, ADDED_AUDIT_COLUMNS),
    )
    for table_name, names in added:
        table = Base.metadata.tables[table_name]
        present = {column["name"] for column in inspect(connection).get_columns(table.name)}
        for name in names:
            if name not in present:
                # The column's DDL as the model declares it, in this database's dialect.
                ddl = CreateColumn(table.c[name]).compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")


def _move_legacy_update_errors(connection: Connection) -> None:
    """Older rows: the hidden error inside LastUpdate, and UNAVAILABLE without a status to return to."""
    row = EnvironmentRow
    rows = connection.execute(
        select(row.id, row.status, row.last_update, row.resume_status).where(
            or_(
                row.last_update.contains(LEGACY_UPDATE_ERROR_KEY),
                (row.status == "UNAVAILABLE") & row.resume_status.is_(None),
            )
        )
    ).all()
    for row_id, status, last_update_text, resume_status in rows:
        last_update = json.loads(last_update_text) if last_update_text else {}
        hidden = last_update.pop(LEGACY_UPDATE_ERROR_KEY, None)
        changes: dict[str, object] = {}
        if hidden is not None:
            changes["last_update"] = json.dumps(last_update, sort_keys=True)
            changes["failed_update_error"] = json.dumps(hidden, sort_keys=True)
        if status == "UNAVAILABLE" and resume_status is None:
            # What older releases did on recovery: back to UPDATE_FAILED if an update's error
            # was kept aside, AVAILABLE otherwise.
            changes["resume_status"] = "UPDATE_FAILED" if hidden is not None else "AVAILABLE"
        connection.execute(update(row).where(row.id == row_id).values(**changes))
