"""Authorization inside a request: ask the authorizer, record its decision for the audit trail, enforce it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openmwaa.errors import AccessDeniedError
from openmwaa.iam import denial_message
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.principal import Principal


def authorize(
    authorizer: Authorizer, ctx: RequestContext, action: str, resource: str, context: Mapping[str, Any]
) -> None:
    """Raise AccessDeniedError unless ``ctx.principal`` may perform ``action`` on ``resource``."""
    principal = _require_principal(ctx)
    decision = authorizer.decide(principal, action, resource, context)
    ctx.record_decision(action, resource, decision)
    if not decision.allowed:
        raise AccessDeniedError(denial_message(principal.arn, action, resource, decision))


def allowed_resources(
    authorizer: Authorizer,
    ctx: RequestContext,
    action: str,
    resources: Sequence[str],
    context: Mapping[str, Any],
) -> list[str]:
    """Those of ``resources`` on which ``ctx.principal`` may perform ``action``.

    The audit trail gets the first allowing decision, or the first denial when none allows.
    """
    principal = _require_principal(ctx)
    allowed = []
    for resource in resources:
        decision = authorizer.decide(principal, action, resource, context)
        if decision.allowed:
            allowed.append(resource)
            if ctx.decision != "Allow":
                ctx.record_decision(action, resource, decision)
        elif ctx.decision is None:
            ctx.record_decision(action, resource, decision)
    return allowed


def _require_principal(ctx: RequestContext) -> Principal:
    if ctx.principal is None:
        raise AccessDeniedError("The request was not authenticated.")
    return ctx.principal
