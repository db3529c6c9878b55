"""The request side of an evaluation: what is asked, and the context keys it carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from openmwaa.iam.conditions import ContextValue

ContextInput = Mapping[str, str | Sequence[str]]
DecisionEffect = Literal["Allow", "ExplicitDeny", "ImplicitDeny"]


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """One question for the engine: may ``principal_arn`` perform ``action`` on ``resource``?

    ``context`` carries the request context keys (``aws:SourceIp``, ``aws:CurrentTime``,
    ``aws:username``, ``aws:ResourceTag/<k>``, ``aws:TagKeys`` as a list, ...). The engine
    never reads a clock: time-based conditions see only what is passed here.
    """

    action: str
    resource: str
    principal_arn: str
    context: ContextInput = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatementRef:
    """Names one statement: policy name plus Sid, or its position when it has no Sid."""

    policy_name: str
    sid: str | None
    index: int

    def __str__(self) -> str:
        return f"{self.policy_name}/{self.sid if self.sid is not None else f'#{self.index}'}"


@dataclass(frozen=True, slots=True)
class Decision:
    effect: DecisionEffect
    #: The deciding statements: the explicit deny, or every statement that allowed.
    statements: tuple[StatementRef, ...] = ()
    #: Anything that went wrong; a decision with errors never allows.
    errors: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.effect == "Allow" and not self.errors


class RequestEnv:
    """Case-insensitive access to the request context, built lazily (most statements need none)."""

    __slots__ = ("_context", "_lower", "_principal_arn")

    def __init__(self, context: ContextInput, principal_arn: str) -> None:
        self._context = context
        self._lower: dict[str, ContextValue] | None = None
        self._principal_arn = principal_arn

    def get(self, key: str) -> ContextValue | None:
        """The value of the lower-cased ``key``; ``aws:PrincipalArn`` defaults to the caller."""
        lower = self._lower
        if lower is None:
            lower = self._lower = {
                k.lower(): v if isinstance(v, str) else _normalize(v) for k, v in self._context.items()
            }
        value = lower.get(key)
        if value is None and key == "aws:principalarn" and self._principal_arn:
            return self._principal_arn
        return value

    def variable(self, key: str) -> str | None:
        """The value a policy variable resolves to: only single-valued keys qualify."""
        value = self.get(key)
        return value if isinstance(value, str) else None


def _normalize(value: object) -> ContextValue:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Sequence):
        return tuple(_normalize_item(v) for v in value)
    return str(value)


def _normalize_item(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)
