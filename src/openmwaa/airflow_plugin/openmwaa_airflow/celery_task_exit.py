"""Imported by an Airflow 3 Celery worker at start (see :mod:`openmwaa_airflow.celery_config`):
:func:`openmwaa_airflow.task_exit.install` in the worker's own process, before it forks its pool,
so every pool process's task supervisor notices its task's end at once."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init

from openmwaa_airflow import task_exit


@worker_init.connect(weak=False)
def wake_supervisors_on_task_exit(sender: Any = None, **_: Any) -> None:
    task_exit.install()
