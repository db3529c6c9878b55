"""The policy evaluator: a pure function from policies and a request to a decision.

Evaluation follows AWS's documented logic for identity-based policies within one account:
an applicable Deny ends evaluation with ``ExplicitDeny``; otherwise any applicable Allow
gives ``Allow``; otherwise ``ImplicitDeny``. A statement applies when its Action (or
NotAction), Resource (or NotResource) and every condition match. Anything doubtful denies:
an unresolvable policy variable makes its statement not apply, a malformed request or an
unexpected failure yields a deny that carries the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from openmwaa.iam.index import Entry, PolicyIndex, iter_entries
from openmwaa.iam.matching import UnresolvedVariable, split_arn
from openmwaa.iam.policy import Policy, PrincipalSpec, Statement
from openmwaa.iam.request import AuthzRequest, ContextInput, Decision, RequestEnv, StatementRef

PolicySet = Sequence[Policy] | PolicyIndex
_IMPLICIT_DENY = Decision("ImplicitDeny")


def evaluate(policies: PolicySet, request: AuthzRequest) -> Decision:
    """Decide ``request`` against identity policies: a linear scan, or the index when given one."""
    if isinstance(policies, PolicyIndex):
        return evaluate_indexed(policies, request)
    wrong = [
        f"policy {p.name!r} is a {p.kind} policy, not an identity policy"
        for p in policies
        if p.kind != "identity"
    ]
    if wrong:
        return Decision("ImplicitDeny", errors=tuple(wrong))
    return _decide(iter_entries(policies), request)


def evaluate_indexed(index: PolicyIndex, request: AuthzRequest) -> Decision:
    if index.errors:
        return Decision("ImplicitDeny", errors=index.errors)
    action = request.action.lower()
    return _decide(index.candidates(action, action.partition(":")[0]), request)


def allowed_resources(
    policies: PolicySet,
    action: str,
    resources: Sequence[str],
    principal_arn: str,
    context: ContextInput,
) -> list[str]:
    """Those of ``resources`` (in the given order) on which ``action`` is allowed."""
    return [
        resource
        for resource in resources
        if evaluate(policies, AuthzRequest(action, resource, principal_arn, context)).allowed
    ]


def _decide(entries: Iterable[Entry], request: AuthzRequest) -> Decision:
    action = request.action.lower()
    service, sep, name = action.partition(":")
    if not sep or not service or not name:
        return Decision("ImplicitDeny", errors=(f"malformed action {request.action!r}",))
    resource = request.resource
    resource_fields = split_arn(resource)
    if resource_fields is None and resource != "*":
        return Decision("ImplicitDeny", errors=(f"malformed resource {resource!r}",))
    env = RequestEnv(request.context, request.principal_arn)
    allows: list[StatementRef] = []
    try:
        for policy_name, statement, prebuilt in entries:
            if not statement.applies_to_action(action, service, name):
                continue
            try:
                if not statement.applies_to_resource(resource, resource_fields, env.variable):
                    continue
                if statement.conditions and not _conditions_hold(statement, env):
                    continue
            except UnresolvedVariable:
                continue
            ref = prebuilt or StatementRef(policy_name, statement.sid, statement.index)
            if statement.effect == "Deny":
                return Decision("ExplicitDeny", (ref,))
            allows.append(ref)
    except Exception as exc:  # deny on doubt: a bug must never turn into an Allow
        return Decision("ImplicitDeny", errors=(f"evaluation failed: {type(exc).__name__}: {exc}",))
    if allows:
        return Decision("Allow", tuple(allows))
    return _IMPLICIT_DENY


def _conditions_hold(statement: Statement, env: RequestEnv) -> bool:
    get, lookup = env.get, env.variable
    for condition in statement.conditions:  # noqa: SIM110 - cheaper than all() on the hot path
        if not condition.evaluate(get, lookup):
            return False
    return True


# --- role trust policies ----------------------------------------------------------------------------


def evaluate_trust(
    policy: Policy,
    *,
    principal_arn: str,
    principal_account: str,
    action: str = "sts:AssumeRole",
    context: ContextInput | None = None,
) -> Decision:
    """Decide whether a role's trust policy lets ``principal_arn`` perform ``action`` (AssumeRole).

    A trust policy naming an account (``"123456789012"`` or ``arn:aws:iam::123456789012:root``)
    trusts every principal of that account *that its own identity policies allow*: the
    caller must check the identity side separately, as AWS does.
    """
    arn_fields = split_arn(principal_arn)
    if arn_fields is None or arn_fields[4] != principal_account:
        return Decision(
            "ImplicitDeny", errors=(f"principal {principal_arn!r} is not in account {principal_account!r}",)
        )
    return _decide_trust(
        policy,
        action,
        RequestEnv(context or {}, principal_arn),
        lambda spec: principal_matches(spec, principal_arn, arn_fields),
    )


def evaluate_service_trust(
    policy: Policy,
    *,
    services: Sequence[str],
    action: str = "sts:AssumeRole",
    context: ContextInput | None = None,
) -> Decision:
    """Decide whether a role's trust policy lets one of the AWS ``services`` assume it.

    A statement applies when its Principal's ``Service`` names one of them (case-insensitively),
    or is the bare ``"*"``; conditions are evaluated against ``context`` (``aws:SourceArn``,
    ``aws:SourceAccount``, as AWS sends them for a service). Deny wins, as in :func:`evaluate_trust`.
    """
    if not services:
        return Decision("ImplicitDeny", errors=("no service principal to evaluate",))
    wanted = {s.lower() for s in services}
    return _decide_trust(
        policy,
        action,
        RequestEnv(context or {}, ""),
        lambda spec: spec.anyone or any(s.lower() in wanted for s in spec.service),
    )


def _decide_trust(
    policy: Policy, action: str, env: RequestEnv, names_caller: Callable[[PrincipalSpec], bool]
) -> Decision:
    """A trust policy's decision for ``action``: a statement applies when ``names_caller`` says its
    Principal names the caller (inverted for NotPrincipal) and its conditions hold; Deny wins."""
    if policy.kind != "trust":
        return Decision("ImplicitDeny", errors=(f"policy {policy.name!r} is not a trust policy",))
    service, sep, name = action.lower().partition(":")
    if not sep or not service or not name:
        return Decision("ImplicitDeny", errors=(f"malformed action {action!r}",))
    allows: list[StatementRef] = []
    try:
        for statement in policy.statements:
            assert statement.principal is not None
            if not statement.applies_to_action(action.lower(), service, name):
                continue
            if names_caller(statement.principal) == statement.not_principal:
                continue
            try:
                if not _conditions_hold(statement, env):
                    continue
            except UnresolvedVariable:
                continue
            ref = StatementRef(policy.name, statement.sid, statement.index)
            if statement.effect == "Deny":
                return Decision("ExplicitDeny", (ref,))
            allows.append(ref)
    except Exception as exc:  # deny on doubt
        return Decision("ImplicitDeny", errors=(f"evaluation failed: {type(exc).__name__}: {exc}",))
    return Decision("Allow", tuple(allows)) if allows else Decision("ImplicitDeny")


def principal_matches(spec: PrincipalSpec, principal_arn: str, arn_fields: tuple[str, ...]) -> bool:
    """Whether an AWS caller is named by a Principal element (Service/Federated never name one)."""
    if spec.anyone:
        return True
    _, partition, _, _, account, resource = arn_fields
    for entry in spec.aws:
        if entry in ("*", principal_arn) or entry == account:
            return True
        fields = split_arn(entry)
        if fields is None or fields[1] != partition or fields[4] != account:
            continue
        if fields[5] == "root":
            return True
        # A role ARN names every session of the role; a role path is not part of the session ARN.
        if fields[2] == "iam" and fields[5].startswith("role/") and resource.startswith("assumed-role/"):
            role_name = fields[5].rsplit("/", 1)[1]
            if resource.split("/")[1] == role_name:
                return True
    return False
