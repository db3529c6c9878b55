"""The typed request context that fills in as a request moves through the pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openmwaa.iam import Decision
from openmwaa.principal import Principal


@dataclass(frozen=True)
class SigningSeed:
    """What S3's chunk signatures chain from: the request's signature, key, timestamp and scope."""

    key: bytes = field(repr=False)
    timestamp: str
    scope: str
    signature: str


@dataclass
class RequestContext:
    """One API request. Handlers read what earlier handlers filled in and add their part."""

    request_id: str
    method: str
    #: The path exactly as received (still percent-encoded, no query string).
    raw_path: str
    #: The query string exactly as received (no leading ``?``).
    raw_query: str
    #: Header names lower-cased, values as received, in order (duplicates kept).
    headers: list[tuple[str, str]]
    client_ip: str
    scheme: str
    #: Wall-clock time the request arrived (epoch seconds).
    received_at: float
    body: bytes = b""
    #: An upload's body, still to be read (S3 PutObject and UploadPart: streamed to disk by their
    #: handler, never held whole); ``body`` is then empty.
    body_stream: AsyncIterator[bytes] | None = field(default=None, repr=False)
    #: ``airflow`` (MWAA), ``sts`` or ``s3``; set by routing.
    service: str | None = None
    #: The botocore operation name, e.g. ``CreateEnvironment``; set by routing.
    operation: str | None = None
    #: Validated operation input keyed by model member names; set by routing.
    params: dict[str, Any] = field(default_factory=dict)
    #: Set by authentication.
    principal: Principal | None = None
    #: Set by authentication of a header-signed S3 request (its aws-chunked body chains from it).
    signing_seed: SigningSeed | None = None
    #: IAM action and resource(s) decided on; set by authorization (for the audit trail).
    action: str | None = None
    resource: str | None = None
    decision: str | None = None
    deciding_statement: str | None = None
    #: What went wrong inside the policy engine, in any decision of this request (each such
    #: decision denies); set by authorization.
    policy_errors: tuple[str, ...] = ()
    #: Filled in at the end.
    status: int = 0
    error_code: str | None = None

    def record_decision(self, action: str, resource: str, decision: Decision) -> None:
        """What authorization decided, for the audit trail."""
        self.action = action
        self.resource = resource
        self.decision = decision.effect
        self.deciding_statement = str(decision.statements[0]) if decision.statements else None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key == lname:
                return value
        return None
