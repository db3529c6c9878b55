from __future__ import annotations

import re

from openmwaa.services.celery_queue import queue_arn, queue_name
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord


def record(name: str = "env", created_at: float = 1700000000.123) -> EnvironmentRecord:
    key = EnvironmentKey("123456789012", "eu-west-1", name)
    return EnvironmentRecord(
        key=key,
        arn=f"arn:aws:airflow:eu-west-1:123456789012:environment/{name}",
        status="AVAILABLE",
        created_at=created_at,
        config={},
        previous_config=None,
        last_update=None,
        tags={},
        secrets={},
    )


def test_the_queue_arn_has_mwaas_shape() -> None:
    assert re.fullmatch(
        r"arn:aws:sqs:eu-west-1:123456789012:airflow-celery-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
        queue_arn(record()),
    )


def test_the_queue_is_stable_and_differs_per_environment_and_per_creation() -> None:
    assert queue_name(record()) == queue_name(record())  # e.g. after a restart: the record is reread
    assert queue_name(record("other")) != queue_name(record())
    # Deleted and created again under the same name: a new queue, as on MWAA.
    assert queue_name(record(created_at=1700000999.0)) != queue_name(record())
