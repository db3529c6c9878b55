"""What runs after every request, whatever its outcome: the access log and the audit trail."""

from __future__ import annotations

import logging
from collections.abc import Callable

from openmwaa.pipeline.context import RequestContext
from openmwaa.store.audit import AuditEntry, AuditLog

access_log = logging.getLogger("openmwaa.access")


def log_access(ctx: RequestContext) -> None:
    """One line per request: never bodies, never secrets."""
    access_log.info(
        "%s %s %s %s %s %s",
        ctx.request_id,
        ctx.principal.arn if ctx.principal else "-",
        ctx.operation or ctx.service or "-",
        ctx.status,
        ctx.error_code or "",
        ctx.client_ip,
    )


def audit_to(audit: AuditLog) -> Callable[[RequestContext], None]:
    def record(ctx: RequestContext) -> None:
        audit.append(
            AuditEntry(
                time=ctx.received_at,
                request_id=ctx.request_id,
                principal_arn=ctx.principal.arn if ctx.principal else None,
                source_ip=ctx.client_ip,
                action=ctx.action or (f"airflow:{ctx.operation}" if ctx.operation else None),
                resource=ctx.resource,
                decision=ctx.decision,
                deciding_statement=ctx.deciding_statement,
                status=ctx.status,
                error_code=ctx.error_code,
                policy_errors="; ".join(ctx.policy_errors) or None,
            )
        )

    return record
