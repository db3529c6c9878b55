"""Celery's configuration for environments in distributed mode: Airflow's own, plus fixes.

With Airflow 2.11 the Celery provider 3.17 registers the task the scheduler sends,
``execute_command``, in the worker's Celery app under its module path instead
(apache/airflow#63729): the worker discards every task instance it receives. Celery imports the
modules named in ``imports`` when a worker starts; :mod:`openmwaa_airflow.celery_tasks` then
registers the same function under the name the scheduler uses, and
:mod:`openmwaa_airflow.celery_pools` closes the broker connections the provider's start-up
check leaves open, which would otherwise hang all but one of the worker's pool processes.
On Airflow 3, :mod:`openmwaa_airflow.celery_task_exit` makes each task's supervisor notice the
task's end at once. openmwaa points ``[celery] celery_config_options`` at the version's
configuration (an option the user may set otherwise).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (
        *DEFAULT_CELERY_CONFIG.get("imports", ()),
        "openmwaa_airflow.celery_tasks",
        "openmwaa_airflow.celery_pools",
    ),
}

AIRFLOW3_CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), "openmwaa_airflow.celery_task_exit"),
}
