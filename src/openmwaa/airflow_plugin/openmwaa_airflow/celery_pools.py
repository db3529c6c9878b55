"""Imported by an Airflow 2 Celery worker at start (see :mod:`openmwaa_airflow.celery_config`):
closes the broker connections the Celery provider's start-up check leaves open, before the
worker forks its pool.

With Airflow 2.11 the Celery provider's ``airflow celery worker --celery-hostname`` first asks
the running workers for their names (``app.control.inspect().active_queues()``) on the worker's
own Celery app. That leaves a pooled Redis connection waiting for a BRPOP reply; every process
the prefork pool forks closes its copy of that connection after the fork, which reads from the
shared socket: the first child gets the reply, the others wait forever. The worker then runs one
task at a time however large its concurrency, and never ends on a warm shutdown (it waits for
the stuck children). Later providers run the check on a throwaway app (apache/airflow#59707).
Here the worker's process closes those pools itself when the worker initializes (Celery's
``worker_init`` signal, sent before the pool starts): the reply is read once, in the one process
that waits for it, and the children inherit nothing open.
"""

from __future__ import annotations

from typing import Any

import kombu.pools
from celery.signals import worker_init


@worker_init.connect(weak=False)
def close_broker_pools(sender: Any = None, **_: Any) -> None:
    kombu.pools.reset()  # every pooled broker connection and producer, closed; the registry cleared
    app = getattr(sender, "app", None)
    if app is not None:
        # The app's own references to the pools just closed: it opens new ones when it needs them.
        app._pool = None
        amqp = app.__dict__.get("amqp")
        if amqp is not None:
            amqp._producer_pool = None
