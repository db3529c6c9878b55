"""The environment's Celery queue: GetEnvironment's ``CeleryExecutorQueue`` and its name in Celery.

MWAA returns the ARN of the environment's SQS queue, ``arn:aws:sqs:<region>:<account>:
airflow-celery-<uuid>``. Here the queue lives in Redis; its name is the ARN's last part, derived
from the environment's key and creation time, so it is the same across restarts and differs
for an environment deleted and created again under the same name.
"""

from __future__ import annotations

import uuid
from typing import Final

from openmwaa.store.environments import EnvironmentRecord

_NAMESPACE: Final = uuid.UUID("6f8d1c6e-2a8e-4f5b-9a37-3c1f4e0a9b21")


def queue_name(record: EnvironmentRecord) -> str:
    """``airflow-celery-<uuid>``: the environment's queue in Celery."""
    return f"airflow-celery-{uuid.uuid5(_NAMESPACE, f'{record.key}|{record.created_at:.3f}')}"


def queue_arn(record: EnvironmentRecord) -> str:
    """GetEnvironment's ``CeleryExecutorQueue``."""
    key = record.key
    return f"arn:aws:sqs:{key.region}:{key.account_id}:{queue_name(record)}"


class CeleryQueues:
    """The environments' Celery queues, which workers on other machines join (distributed mode
    only: in local mode no environment has one)."""

    def __init__(self, *, distributed: bool) -> None:
        self._distributed = distributed

    def queue(self, record: EnvironmentRecord) -> str | None:
        return queue_name(record) if self._distributed else None
