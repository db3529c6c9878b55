"""A policy simulator in the spirit of AWS's: the decision, and the statements that made it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from openmwaa.iam.engine import evaluate
from openmwaa.iam.policy import Policy, Statement
from openmwaa.iam.request import AuthzRequest, ContextInput, Decision, StatementRef

#: The words AWS's simulator uses for each effect.
_EVAL_DECISION = {"Allow": "allowed", "ExplicitDeny": "explicitDeny", "ImplicitDeny": "implicitDeny"}


@dataclass(frozen=True, slots=True)
class SimulationResult:
    request: AuthzRequest
    decision: Decision
    #: The deciding statements, resolved to their text.
    matched: tuple[tuple[StatementRef, Statement], ...]

    @property
    def eval_decision(self) -> str:
        return _EVAL_DECISION[self.decision.effect]

    def render(self) -> str:
        lines = [
            f"Action:     {self.request.action}",
            f"Resource:   {self.request.resource}",
            f"Principal:  {self.request.principal_arn}",
            f"Decision:   {self.eval_decision}",
        ]
        if self.decision.errors:
            lines.append("Errors:")
            lines.extend(f"  {error}" for error in self.decision.errors)
        if self.matched:
            lines.append("Matched statements:")
            for ref, statement in self.matched:
                sid = statement.sid if statement.sid is not None else "(no Sid)"
                lines.append(
                    f"  Policy {ref.policy_name!r}, statement {statement.index} {sid} ({statement.effect}):"
                )
                lines.extend("    " + line for line in statement.source.splitlines())
        else:
            lines.append("Matched statements: none (no statement allows this action on this resource)")
        if not self.decision.allowed:
            lines.append(
                "Message:    "
                + denial_message(
                    self.request.principal_arn, self.request.action, self.request.resource, self.decision
                )
            )
        return "\n".join(lines) + "\n"


def simulate(
    policies: Sequence[Policy], action: str, resource: str, principal_arn: str, context: ContextInput
) -> SimulationResult:
    request = AuthzRequest(action=action, resource=resource, principal_arn=principal_arn, context=context)
    decision = evaluate(policies, request)
    by_ref = {(p.name, s.index): s for p in policies for s in p.statements}
    matched = tuple((ref, by_ref[(ref.policy_name, ref.index)]) for ref in decision.statements)
    return SimulationResult(request=request, decision=decision, matched=matched)


def denial_message(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied wording for an identity-policy denial."""
    if decision.allowed:
        raise ValueError("denial_message needs a deny decision")
    prefix = f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
    if decision.effect == "ExplicitDeny":
        return f"{prefix} with an explicit deny in an identity-based policy"
    return f"{prefix} because no identity-based policy allows the {action} action"
