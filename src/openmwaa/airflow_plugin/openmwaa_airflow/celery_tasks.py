"""Imported by an Airflow 2 Celery worker at start (see :mod:`openmwaa_airflow.celery_config`):
``execute_command`` under the name the scheduler sends it by."""

from __future__ import annotations


def _register() -> None:
    from airflow.providers.celery.executors import celery_executor_utils as utils

    command = getattr(utils, "execute_command", None)  # Airflow 3 has no such task
    if command is not None and "execute_command" not in utils.app.tasks:
        utils.app.task(name="execute_command")(command.run)


_register()
