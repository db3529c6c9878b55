"""The audit trail of the in-process server: requests refused at the edge are audited too."""

from __future__ import annotations

import httpx

from openmwaa.store.audit import AuditEntry
from tests.api.conftest import ApiServer


def _audited(api: ApiServer, request_id: str) -> AuditEntry:
    api.services.audit.flush()
    for _, entry in api.services.audit.query(since=0, limit=100_000):
        if entry.request_id == request_id:
            return entry
    raise AssertionError(f"request {request_id} is not in the audit trail")


def test_a_body_over_the_limit_is_audited(api: ApiServer) -> None:
    response = httpx.put(f"{api.endpoint_url}/environments/x-env", content=b"x" * (9 * 1024 * 1024))
    assert response.status_code == 413
    entry = _audited(api, response.headers["x-amzn-RequestId"])
    assert (entry.status, entry.error_code, entry.source_ip) == (413, "ValidationException", "127.0.0.1")
    assert entry.principal_arn is None  # refused before authentication
