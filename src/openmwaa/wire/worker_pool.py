"""The JoinWorkerPool exchange: what a worker on another machine asks for and what it is given.

Both sides use these shapes: the server serializes a :class:`WorkerPoolGrant` into the response
body (JSON over HTTPS, never a URL), ``openmwaa worker`` parses it back strictly. The grant
carries the environment's Airflow variables, its secrets among them (the metadata database's
and the broker's URLs with their passwords, the Fernet key, the signing keys): no ``repr``
shows them, and nothing logs a body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from openmwaa.errors import ValidationError

#: ``POST /_openmwaa/worker-pool/<environment name>``, SigV4-signed for :data:`SIGNING_SERVICE`.
PATH_PREFIX: Final = "/_openmwaa/worker-pool/"
#: The SigV4 credential scope's service, and the IAM namespace of :data:`ACTION`.
SIGNING_SERVICE: Final = "openmwaa"
OPERATION: Final = "JoinWorkerPool"
ACTION: Final = f"{SIGNING_SERVICE}:{OPERATION}"
#: A worker's name: what Celery calls it (``name@host``) and the audit trail's record of it.
WORKER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ENVIRONMENT_NAME: Final = re.compile(r"[a-zA-Z][0-9a-zA-Z_-]{0,79}")  # MWAA's pattern
MAX_REQUEST_BYTES: Final = 4096


@dataclass(frozen=True)
class SourceObject:
    """An object the worker fetches through S3: its key and, when the environment pins one, its version."""

    key: str
    version: str | None = None


@dataclass(frozen=True)
class WorkerSources:
    """Where the environment's code lives: a bucket of openmwaa's S3 API."""

    bucket: str
    dags_prefix: str
    plugins: SourceObject | None = None
    requirements: SourceObject | None = None
    startup_script: SourceObject | None = None


@dataclass(frozen=True)
class WorkerPoolGrant:
    name: str
    arn: str
    airflow_version: str
    #: The Celery queue the environment's workers consume.
    queue: str
    sources: WorkerSources
    #: Airflow 3: the path of the environment's execution API on openmwaa's endpoint.
    execution_api_path: str | None
    #: ``AIRFLOW__*`` (and a few other) variables of the environment's workers, minus what names
    #: a path, port or host of openmwaa's machine. Secrets: never in a repr.
    airflow_variables: Mapping[str, str] = field(repr=False)

    def to_json(self) -> bytes:
        sources = self.sources
        document: dict[str, Any] = {
            "Name": self.name,
            "Arn": self.arn,
            "AirflowVersion": self.airflow_version,
            "Queue": self.queue,
            "ExecutionApiPath": self.execution_api_path,
            "Sources": {
                "Bucket": sources.bucket,
                "DagsPrefix": sources.dags_prefix,
                "Plugins": _object_json(sources.plugins),
                "Requirements": _object_json(sources.requirements),
                "StartupScript": _object_json(sources.startup_script),
            },
            "AirflowVariables": dict(self.airflow_variables),
        }
        return json.dumps(document).encode()

    @classmethod
    def from_json(cls, body: bytes) -> WorkerPoolGrant:
        """Parse a grant strictly; ValidationError for anything that is not one."""
        try:
            data = json.loads(body)
            sources = data["Sources"]
            variables = data["AirflowVariables"]
            grant = cls(
                name=_text(data["Name"]),
                arn=_text(data["Arn"]),
                airflow_version=_text(data["AirflowVersion"]),
                queue=_text(data["Queue"]),
                execution_api_path=_optional_text(data["ExecutionApiPath"]),
                sources=WorkerSources(
                    bucket=_text(sources["Bucket"]),
                    dags_prefix=_text(sources["DagsPrefix"]),
                    plugins=_object(sources["Plugins"]),
                    requirements=_object(sources["Requirements"]),
                    startup_script=_object(sources["StartupScript"]),
                ),
                airflow_variables={_text(k): _text(v) for k, v in dict(variables).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValidationError("The JoinWorkerPool response is not a worker pool grant.") from exc
        return grant


def _object_json(source: SourceObject | None) -> dict[str, Any] | None:
    return None if source is None else {"Key": source.key, "Version": source.version}


def _object(value: Any) -> SourceObject | None:
    if value is None:
        return None
    version = value["Version"]
    return SourceObject(_text(value["Key"]), _optional_text(version))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def parse_join_request(body: bytes) -> str | None:
    """The request body: ``{}`` or ``{"WorkerName": "..."}``; the worker's name (or None)."""
    if len(body) > MAX_REQUEST_BYTES:
        raise ValidationError("The JoinWorkerPool request body is too large.")
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise ValidationError("The JoinWorkerPool request body must be a JSON object.") from exc
    if not isinstance(data, dict) or set(data) - {"WorkerName"}:
        raise ValidationError('The JoinWorkerPool request body may only hold "WorkerName".')
    name = data.get("WorkerName")
    if name is None:
        return None
    if not isinstance(name, str) or not WORKER_NAME.fullmatch(name):
        raise ValidationError(f"WorkerName must match {WORKER_NAME.pattern}.")
    return name
