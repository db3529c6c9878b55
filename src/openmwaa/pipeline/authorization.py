"""Authorization inside a request: ask the authorizer, record its decision for the audit trail, enforce it.

A decision that carries errors (a policy the engine could not evaluate) denies, as any doubt
does; the errors are logged and go into the audit trail, so the denial is never a silent one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from openmwaa.errors import AccessDeniedError
from openmwaa.iam import Decision, denial_message
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.principal import Principal

log = logging.getLogger(__name__)


def authorize(
    authorizer: Authorizer, ctx: RequestContext, action: str, resource: str, context: Mapping[str, Any]
) -> None:
    """Raise AccessDeniedError unless ``ctx.principal`` may perform ``action`` on ``resource``."""
    principal = _require_principal(ctx)
    decision = authorizer.decide(principal, action, resource, context)
    record_decision(ctx, action, resource, decision)
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

    The audit trail gets the first allowing decision, or the first denial when none allows,
    and the policy engine's errors of every decision.
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
        _note_errors(ctx, action, resource, decision)
    return allowed


def first_allowed(
    authorizer: Authorizer,
    ctx: RequestContext,
    action: str,
    resources: Sequence[str],
    context: Mapping[str, Any],
) -> str | None:
    """The first of ``resources`` (in the caller's order of preference) on which ``ctx.principal``
    may perform ``action``, or None; the ones after it are not evaluated.

    For a choice among alternatives, such as the Airflow role ARNs InvokeRestApi runs as (most
    privileged first): one evaluation instead of five for a caller granted the first. A decision
    that carries errors never allows (the engine denies on doubt), so the search goes on past it.
    The audit trail gets the allowing decision, or the first denial when none allows, and the
    policy engine's errors of every decision evaluated.
    """
    principal = _require_principal(ctx)
    for resource in resources:
        decision = authorizer.decide(principal, action, resource, context)
        _note_errors(ctx, action, resource, decision)
        if decision.allowed:
            ctx.record_decision(action, resource, decision)
            return resource
        if ctx.decision is None:
            ctx.record_decision(action, resource, decision)
    return None


def record_decision(ctx: RequestContext, action: str, resource: str, decision: Decision) -> None:
    """Keep ``decision`` on the request for the audit trail; log the policy engine's errors."""
    ctx.record_decision(action, resource, decision)
    _note_errors(ctx, action, resource, decision)


def _note_errors(ctx: RequestContext, action: str, resource: str, decision: Decision) -> None:
    if decision.errors:
        ctx.policy_errors = tuple(dict.fromkeys((*ctx.policy_errors, *decision.errors)))
        log.warning(
            "request %s: the policy engine denied %s on %s for %s with errors: %s",
            ctx.request_id,
            action,
            resource,
            ctx.principal.arn if ctx.principal else "-",
            "; ".join(decision.errors),
        )


def _require_principal(ctx: RequestContext) -> Principal:
    if ctx.principal is None:
        raise AccessDeniedError("The request was not authenticated.")
    return ctx.principal
