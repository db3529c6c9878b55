"""Airflow 2 REST paths on an Airflow 3 environment: ``/api/v1/...`` is served by ``/api/v2/...``.

MWAA's web-session example (log in, then ``POST /api/v1/dags/{dag_id}/dagRuns`` with
``{"conf": {}}``) is written for Airflow 2, while openmwaa's default environment runs Airflow 3,
which has only ``/api/v2``. openmwaa therefore maps the prefix, and for the one call whose body
changed incompatibly -- triggering a DAG run, where Airflow 3 requires ``logical_date`` (``null``
for "now") and renamed ``execution_date`` -- fills the body in. Other v1 calls reach v2 unchanged
and get Airflow 3's answer; v2 callers are never rewritten.
"""

from __future__ import annotations

import json
import re
from typing import Final

V1_PREFIX: Final = "/api/v1"
V2_PREFIX: Final = "/api/v2"
MAX_TRIGGER_BODY: Final = 1024 * 1024
_TRIGGER = re.compile(r"^/api/v1/dags/[^/]+/dagRuns/?$")


def rewrite_for_airflow3(path: str) -> str | None:
    """The v2 path for a v1 path, or None when ``path`` is not under ``/api/v1``."""
    if path == V1_PREFIX or path.startswith(V1_PREFIX + "/"):
        return V2_PREFIX + path[len(V1_PREFIX) :]
    return None


def is_v1_trigger(method: str, path: str) -> bool:
    return method == "POST" and _TRIGGER.match(path) is not None


def trigger_body_for_airflow3(body: bytes) -> bytes:
    """A v1 DAG-run body as Airflow 3 accepts it; anything that is not a JSON object passes unchanged."""
    try:
        payload = json.loads(body) if body.strip() else {}
    except ValueError:
        return body
    if not isinstance(payload, dict):
        return body
    if "execution_date" in payload and "logical_date" not in payload:
        payload["logical_date"] = payload.pop("execution_date")
    payload.setdefault("logical_date", None)
    return json.dumps(payload).encode()
