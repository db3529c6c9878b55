"""The pure IAM policy engine: parse policies, evaluate requests, explain decisions.

Nothing here does I/O or reads a clock; time and everything else about a request comes in
through :class:`AuthzRequest` ``context``.
"""

from openmwaa.iam.engine import (
    allowed_resources,
    evaluate,
    evaluate_indexed,
    evaluate_service_trust,
    evaluate_trust,
)
from openmwaa.iam.errors import PolicyError
from openmwaa.iam.index import PolicyIndex
from openmwaa.iam.policy import Policy, PolicyKind, Statement, parse_policy
from openmwaa.iam.request import AuthzRequest, Decision, StatementRef
from openmwaa.iam.simulator import SimulationResult, denial_message, simulate

__all__ = [
    "AuthzRequest",
    "Decision",
    "Policy",
    "PolicyError",
    "PolicyIndex",
    "PolicyKind",
    "SimulationResult",
    "Statement",
    "StatementRef",
    "allowed_resources",
    "denial_message",
    "evaluate",
    "evaluate_indexed",
    "evaluate_service_trust",
    "evaluate_trust",
    "parse_policy",
    "simulate",
]
