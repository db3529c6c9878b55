"""What each supervisor event, and a resume after openmwaa restarts, does to an environment.

The whole status machine is the table :data:`TRANSITIONS`, one row per (trigger, current
status). A pair that is not in the table changes nothing: a late event after a delete, a
second "unavailable" for the same crash loop's start, an "available" for an environment that
already is. API calls (create, update, delete) set their own statuses in ``environments.py``.

Two fields live only while an environment is away from its settled status:

- ``resume_status``: while MAINTENANCE or UNAVAILABLE, the status it returns to once Airflow is
  healthy (AVAILABLE, or UPDATE_FAILED: a rolled-back update still serves the old configuration).
- ``failed_update_error``: while UNAVAILABLE after a failed update, that update's
  ``LastUpdate.Error``, which the API shows again on recovery; ``LastUpdate.Error`` tells why
  Airflow is not serving meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from openmwaa.store.environments import EnvironmentRecord

Trigger = Literal["available", "create_failed", "update_failed", "unavailable", "resume"]


class LastUpdateChange(Enum):
    KEEP = "unchanged"
    SUCCEED = "Status SUCCESS, no Error: the create or update worked"
    FAIL = "Status FAILED, the event's Error: the create or update failed"
    SHOW_REASON = "Error: why Airflow is not serving (a failed update's Error is set aside)"
    RESTORE = "Error: the failed update's, set aside while UNAVAILABLE (none if there was none)"


class ConfigChange(Enum):
    KEEP = "unchanged"
    COMMIT = "the update's configuration stays in force"
    ROLL_BACK = "the configuration in force before the update comes back"


#: ``Transition.to``: back to the status the environment had (its ``resume_status``).
RETURN: Final = "its status before"


@dataclass(frozen=True)
class Transition:
    to: str
    last_update: LastUpdateChange = LastUpdateChange.KEEP
    #: Remember the current status as the one to return to.
    remember: bool = False
    config: ConfigChange = ConfigChange.KEEP


KEEP, SUCCEED, FAIL = LastUpdateChange.KEEP, LastUpdateChange.SUCCEED, LastUpdateChange.FAIL
SHOW_REASON, RESTORE = LastUpdateChange.SHOW_REASON, LastUpdateChange.RESTORE
COMMIT, ROLL_BACK = ConfigChange.COMMIT, ConfigChange.ROLL_BACK

# fmt: off
TRANSITIONS: Final[Mapping[tuple[Trigger, str], Transition]] = {
    # trigger          status                       becomes         LastUpdate    and
    # Airflow reports healthy.
    ("available",     "CREATING"):      Transition("AVAILABLE",     SUCCEED),
    ("available",     "UPDATING"):      Transition("AVAILABLE",     SUCCEED,      config=COMMIT),
    ("available",     "MAINTENANCE"):   Transition(RETURN,          KEEP),
    ("available",     "UNAVAILABLE"):   Transition(RETURN,          RESTORE),
    # Airflow could not be started with the new configuration.
    ("create_failed", "CREATING"):      Transition("CREATE_FAILED", FAIL),
    ("update_failed", "UPDATING"):      Transition("UPDATE_FAILED", FAIL,         config=ROLL_BACK),
    # Airflow stopped serving (a crash loop), or did not start again after a restart.
    ("unavailable",   "AVAILABLE"):     Transition("UNAVAILABLE",   SHOW_REASON,  remember=True),
    ("unavailable",   "UPDATE_FAILED"): Transition("UNAVAILABLE",   SHOW_REASON,  remember=True),
    ("unavailable",   "MAINTENANCE"):   Transition("UNAVAILABLE",   SHOW_REASON),
    ("unavailable",   "UNAVAILABLE"):   Transition("UNAVAILABLE",   SHOW_REASON),
    # openmwaa restarted: its Airflow starts again before the environment serves.
    ("resume",        "AVAILABLE"):     Transition("MAINTENANCE",   KEEP,         remember=True),
    ("resume",        "UPDATE_FAILED"): Transition("MAINTENANCE",   KEEP,         remember=True),
}
# fmt: on

#: The statuses in which ``resume_status`` and ``failed_update_error`` are kept.
AWAY_STATUSES: Final = frozenset({"MAINTENANCE", "UNAVAILABLE"})


def next_state(
    record: EnvironmentRecord, trigger: Trigger, error: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """The record's changed fields after ``trigger`` (``error``: the event's), or None: no change."""
    transition = TRANSITIONS.get((trigger, record.status))
    if transition is None:
        return None
    resume_status = record.status if transition.remember else record.resume_status
    status = transition.to
    if status == RETURN:
        status = resume_status or "AVAILABLE"
    set_aside = record.failed_update_error
    last_update = dict(record.last_update or {})
    change = transition.last_update
    if change is SUCCEED:
        last_update["Status"] = "SUCCESS"
        last_update.pop("Error", None)
    elif change is FAIL:
        last_update.update(Status="FAILED", Error=_required(error, trigger))
    elif change is SHOW_REASON:
        if resume_status == "UPDATE_FAILED" and set_aside is None:
            set_aside = last_update.get("Error")
        last_update["Error"] = _required(error, trigger)
    elif change is RESTORE:
        last_update.pop("Error", None)
        if set_aside is not None:
            last_update["Error"] = dict(set_aside)
    if status not in AWAY_STATUSES:
        resume_status = set_aside = None
    changes: dict[str, Any] = {
        "status": status,
        "last_update": last_update or None,
        "resume_status": resume_status,
        "failed_update_error": set_aside,
    }
    if transition.config is COMMIT:
        changes["previous_config"] = None
    elif transition.config is ROLL_BACK:
        if record.previous_config is not None:
            changes["config"] = record.previous_config
        changes["previous_config"] = None
    return changes


def _required(error: Mapping[str, str] | None, trigger: Trigger) -> dict[str, str]:
    if error is None:
        raise ValueError(f"a {trigger!r} transition needs the event's error")
    return dict(error)
