"""The environment status machine, row by row: each case is a record before and its fields after."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from openmwaa.services.transitions import TRANSITIONS, Trigger, next_state
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord

ERROR = {"ErrorCode": "COMPONENT_CRASHED", "ErrorMessage": "the scheduler keeps crashing"}
UPDATE_ERROR = {"ErrorCode": "REQUIREMENTS_INSTALL_FAILED", "ErrorMessage": "pip said no"}
OLDER_CRASH = {"ErrorCode": "STARTUP_TIMEOUT", "ErrorMessage": "an older reason"}
CREATING = {"Status": "PENDING", "CreatedAt": 1.0, "Source": "CREATE"}
UPDATING = {"Status": "PENDING", "CreatedAt": 2.0, "Source": "UPDATE"}
CREATED = {"Status": "SUCCESS", "CreatedAt": 1.0, "Source": "CREATE"}
UPDATED = {"Status": "SUCCESS", "CreatedAt": 2.0, "Source": "UPDATE"}
UPDATE_FAILED = {"Status": "FAILED", "CreatedAt": 2.0, "Source": "UPDATE", "Error": UPDATE_ERROR}
OLD_CONFIG = {"AirflowVersion": "3.3.1"}
NEW_CONFIG = {"AirflowVersion": "3.3.1", "MaxWorkers": 3}


def record(status: str, **fields: Any) -> EnvironmentRecord:
    defaults: dict[str, Any] = {
        "key": EnvironmentKey("123456789012", "us-east-1", "env"),
        "arn": "arn:aws:airflow:us-east-1:123456789012:environment/env",
        "status": status,
        "created_at": 1.0,
        "config": NEW_CONFIG,
        "previous_config": None,
        "last_update": CREATED,
        "tags": {},
        "secrets": {},
    }
    return EnvironmentRecord(**{**defaults, **fields})


@dataclass(frozen=True)
class Case:
    trigger: Trigger
    before: EnvironmentRecord
    #: The fields that differ from ``before`` afterwards.
    after: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        extra = f"/{self.before.resume_status}" if self.before.resume_status else ""
        return f"{self.trigger}:{self.before.status}{extra}"


CASES = [
    # Airflow reports healthy.
    Case(
        "available",
        record("CREATING", last_update=CREATING),
        {"status": "AVAILABLE", "last_update": {**CREATING, "Status": "SUCCESS"}},
    ),
    Case(
        "available",
        record("UPDATING", previous_config=OLD_CONFIG, last_update=UPDATING),
        {"status": "AVAILABLE", "last_update": UPDATED, "previous_config": None},
    ),
    Case(
        "available",
        record("MAINTENANCE", resume_status="AVAILABLE"),
        {"status": "AVAILABLE", "resume_status": None},
    ),
    Case(
        "available",
        record("MAINTENANCE", resume_status="UPDATE_FAILED", last_update=UPDATE_FAILED),
        {"status": "UPDATE_FAILED", "resume_status": None},
    ),
    Case(
        "available",
        record("UNAVAILABLE", resume_status="AVAILABLE", last_update={**CREATED, "Error": ERROR}),
        {"status": "AVAILABLE", "resume_status": None, "last_update": CREATED},
    ),
    Case(
        "available",
        record(
            "UNAVAILABLE",
            resume_status="UPDATE_FAILED",
            failed_update_error=UPDATE_ERROR,
            last_update={**UPDATE_FAILED, "Error": ERROR},
        ),
        {
            "status": "UPDATE_FAILED",
            "resume_status": None,
            "failed_update_error": None,
            "last_update": UPDATE_FAILED,
        },
    ),
    # Airflow could not be started with the new configuration.
    Case(
        "create_failed",
        record("CREATING", last_update=CREATING),
        {"status": "CREATE_FAILED", "last_update": {**CREATING, "Status": "FAILED", "Error": ERROR}},
    ),
    Case(
        "update_failed",
        record("UPDATING", previous_config=OLD_CONFIG, last_update=UPDATING),
        {
            "status": "UPDATE_FAILED",
            "config": OLD_CONFIG,
            "previous_config": None,
            "last_update": {**UPDATING, "Status": "FAILED", "Error": ERROR},
        },
    ),
    # Airflow stopped serving.
    Case(
        "unavailable",
        record("AVAILABLE"),
        {"status": "UNAVAILABLE", "resume_status": "AVAILABLE", "last_update": {**CREATED, "Error": ERROR}},
    ),
    Case(
        "unavailable",
        record("UPDATE_FAILED", last_update=UPDATE_FAILED),
        {
            "status": "UNAVAILABLE",
            "resume_status": "UPDATE_FAILED",
            "failed_update_error": UPDATE_ERROR,
            "last_update": {**UPDATE_FAILED, "Error": ERROR},
        },
    ),
    Case(
        "unavailable",
        record("MAINTENANCE", resume_status="AVAILABLE"),
        {"status": "UNAVAILABLE", "last_update": {**CREATED, "Error": ERROR}},
    ),
    Case(
        "unavailable",
        record("MAINTENANCE", resume_status="UPDATE_FAILED", last_update=UPDATE_FAILED),
        {
            "status": "UNAVAILABLE",
            "failed_update_error": UPDATE_ERROR,
            "last_update": {**UPDATE_FAILED, "Error": ERROR},
        },
    ),
    Case(
        "unavailable",
        record(
            "UNAVAILABLE",
            resume_status="UPDATE_FAILED",
            failed_update_error=UPDATE_ERROR,
            last_update={**UPDATE_FAILED, "Error": OLDER_CRASH},
        ),
        {"last_update": {**UPDATE_FAILED, "Error": ERROR}},  # the update's error stays set aside
    ),
    # openmwaa restarted.
    Case("resume", record("AVAILABLE"), {"status": "MAINTENANCE", "resume_status": "AVAILABLE"}),
    Case(
        "resume",
        record("UPDATE_FAILED", last_update=UPDATE_FAILED),
        {"status": "MAINTENANCE", "resume_status": "UPDATE_FAILED"},
    ),
]

_FIELDS = ("status", "config", "previous_config", "last_update", "resume_status", "failed_update_error")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_transition(case: Case) -> None:
    changes = next_state(case.before, case.trigger, ERROR)
    assert changes is not None
    after = replace(case.before, **changes)
    expected = replace(case.before, **case.after)
    assert {f: getattr(after, f) for f in _FIELDS} == {f: getattr(expected, f) for f in _FIELDS}


def test_every_row_of_the_table_has_a_case() -> None:
    assert {(c.trigger, c.before.status) for c in CASES} == set(TRANSITIONS)


STATUSES = sorted({status for _, status in TRANSITIONS} | {"CREATE_FAILED", "DELETING", "PENDING"})
TRIGGERS: list[Trigger] = ["available", "create_failed", "update_failed", "unavailable", "resume"]
UNLISTED = [pair for pair in itertools.product(TRIGGERS, STATUSES) if pair not in TRANSITIONS]


@pytest.mark.parametrize(("trigger", "status"), UNLISTED, ids=[f"{t}:{s}" for t, s in UNLISTED])
def test_a_pair_not_in_the_table_changes_nothing(trigger: Trigger, status: str) -> None:
    assert next_state(record(status, resume_status="AVAILABLE"), trigger, ERROR) is None


def test_a_failure_without_its_error_is_a_bug_not_a_silent_change() -> None:
    with pytest.raises(ValueError, match="needs the event's error"):
        next_state(record("CREATING"), "create_failed")
