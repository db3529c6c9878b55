"""Authorization inside a request: the authorizer decides, the pipeline records and enforces."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from openmwaa.errors import AccessDeniedError
from openmwaa.iam import Decision, StatementRef, parse_policy
from openmwaa.pipeline.authorization import allowed_resources, authorize, first_allowed
from openmwaa.pipeline.context import RequestContext
from openmwaa.pipeline.finishers import audit_to
from openmwaa.principal import Principal
from openmwaa.services.authorization import IamAuthorizer
from openmwaa.services.invoke import role_arns, role_of
from openmwaa.store.audit import AuditLog
from openmwaa.store.db import open_engine

ALICE = Principal(
    arn="arn:aws:iam::123456789012:user/alice",
    account_id="123456789012",
    kind="user",
    user_id="AIDAALICE",
    name="alice",
    session_name=None,
    access_key_id="AKIAALICE",
)
ROLE_A = "arn:aws:airflow:us-east-1:123456789012:role/env/Admin"
ROLE_B = "arn:aws:airflow:us-east-1:123456789012:role/env/User"


class TableAuthorizer:
    """Decides from a table keyed by resource; remembers what it was asked."""

    def __init__(self, decisions: Mapping[str, Decision]) -> None:
        self.decisions = decisions
        self.asked: list[tuple[str, str, str]] = []

    def decide(
        self, principal: Principal, action: str, resource: str, context: Mapping[str, Any]
    ) -> Decision:
        self.asked.append((principal.arn, action, resource))
        return self.decisions[resource]


def _ctx(principal: Principal | None = ALICE) -> RequestContext:
    ctx = RequestContext("rid", "POST", "/x", "", [], "127.0.0.1", "https", 0.0)
    ctx.principal = principal
    return ctx


ALLOW = Decision("Allow", (StatementRef("user/alice/p", "Sid1", 0),))
DENY = Decision("ExplicitDeny", (StatementRef("user/alice/p", "NoAdmin", 1),))


def test_allowed_request_is_recorded() -> None:
    ctx = _ctx()
    authorize(TableAuthorizer({ROLE_A: ALLOW}), ctx, "airflow:X", ROLE_A, {})
    assert (ctx.action, ctx.resource, ctx.decision, ctx.deciding_statement) == (
        "airflow:X",
        ROLE_A,
        "Allow",
        "user/alice/p/Sid1",
    )


def test_denied_request_is_recorded_then_refused() -> None:
    ctx = _ctx()
    with pytest.raises(AccessDeniedError, match="explicit deny"):
        authorize(TableAuthorizer({ROLE_A: DENY}), ctx, "airflow:X", ROLE_A, {})
    assert (ctx.decision, ctx.deciding_statement) == ("ExplicitDeny", "user/alice/p/NoAdmin")


def test_unauthenticated_request_is_refused_without_asking() -> None:
    authorizer = TableAuthorizer({ROLE_A: ALLOW})
    with pytest.raises(AccessDeniedError):
        authorize(authorizer, _ctx(None), "airflow:X", ROLE_A, {})
    assert authorizer.asked == []


def test_allowed_resources_records_the_first_allow() -> None:
    ctx = _ctx()
    authorizer = TableAuthorizer({ROLE_A: DENY, ROLE_B: ALLOW})
    assert allowed_resources(authorizer, ctx, "airflow:X", [ROLE_A, ROLE_B], {}) == [ROLE_B]
    assert (ctx.resource, ctx.decision) == (ROLE_B, "Allow")


def test_allowed_resources_records_the_first_denial_when_none_allows() -> None:
    ctx = _ctx()
    authorizer = TableAuthorizer({ROLE_A: DENY, ROLE_B: Decision("ImplicitDeny")})
    assert allowed_resources(authorizer, ctx, "airflow:X", [ROLE_A, ROLE_B], {}) == []
    assert (ctx.resource, ctx.decision) == (ROLE_A, "ExplicitDeny")


def test_policy_engine_errors_are_logged_and_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A policy the engine cannot use as an identity policy: the decision denies and carries an error.
    trust = parse_policy(
        {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]},
        name="misplaced-trust",
        kind="trust",
    )
    authorizer = IamAuthorizer(lambda principal: [trust])
    audit = AuditLog(open_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    ctx = _ctx()
    with (
        caplog.at_level(logging.WARNING, logger="openmwaa.pipeline.authorization"),
        pytest.raises(AccessDeniedError),
    ):
        authorize(authorizer, ctx, "airflow:GetEnvironment", ROLE_A, {})
    assert ctx.policy_errors == ("policy 'misplaced-trust' is a trust policy, not an identity policy",)
    assert "misplaced-trust" in caplog.text and ctx.request_id in caplog.text
    ctx.status = 403
    audit_to(audit)(ctx)
    audit.flush()
    (_, entry), *_ = audit.query()
    assert (entry.decision, entry.policy_errors) == ("ImplicitDeny", ctx.policy_errors[0])


def test_allowed_resources_keeps_the_errors_of_every_decision(caplog: pytest.LogCaptureFixture) -> None:
    ctx = _ctx()
    broken = Decision("ImplicitDeny", errors=("malformed resource 'x'",))
    authorizer = TableAuthorizer({ROLE_A: ALLOW, ROLE_B: broken})
    with caplog.at_level(logging.WARNING, logger="openmwaa.pipeline.authorization"):
        assert allowed_resources(authorizer, ctx, "airflow:X", [ROLE_A, ROLE_B], {}) == [ROLE_A]
    # The recorded decision is the allow; the error behind the other role's denial is not lost.
    assert (ctx.resource, ctx.decision, ctx.policy_errors) == (ROLE_A, "Allow", ("malformed resource 'x'",))
    assert ROLE_B in caplog.text and "malformed resource" in caplog.text


ROLE_C = "arn:aws:airflow:us-east-1:123456789012:role/env/Viewer"


def test_first_allowed_stops_at_the_first_allow() -> None:
    ctx = _ctx()
    authorizer = TableAuthorizer({ROLE_A: DENY, ROLE_B: ALLOW, ROLE_C: ALLOW})
    assert first_allowed(authorizer, ctx, "airflow:X", [ROLE_A, ROLE_B, ROLE_C], {}) == ROLE_B
    assert [resource for _, _, resource in authorizer.asked] == [ROLE_A, ROLE_B]
    assert (ctx.resource, ctx.decision, ctx.deciding_statement) == (ROLE_B, "Allow", "user/alice/p/Sid1")


def test_first_allowed_records_the_first_denial_when_none_allows() -> None:
    ctx = _ctx()
    authorizer = TableAuthorizer({ROLE_A: Decision("ImplicitDeny"), ROLE_B: DENY})
    assert first_allowed(authorizer, ctx, "airflow:X", [ROLE_A, ROLE_B], {}) is None
    assert len(authorizer.asked) == 2
    assert (ctx.resource, ctx.decision) == (ROLE_A, "ImplicitDeny")


def test_first_allowed_never_takes_a_decision_with_errors(caplog: pytest.LogCaptureFixture) -> None:
    # Deny on doubt: an "Allow" that carries an evaluation error is no allow; the search goes on,
    # and the error is logged and audited although another role allowed.
    ctx = _ctx()
    doubtful = Decision("Allow", (StatementRef("user/alice/p", "Sid1", 0),), errors=("evaluation failed: X",))
    authorizer = TableAuthorizer({ROLE_A: doubtful, ROLE_B: ALLOW})
    with caplog.at_level(logging.WARNING, logger="openmwaa.pipeline.authorization"):
        assert first_allowed(authorizer, ctx, "airflow:X", [ROLE_A, ROLE_B], {}) == ROLE_B
    assert (ctx.resource, ctx.decision, ctx.policy_errors) == (ROLE_B, "Allow", ("evaluation failed: X",))
    assert ROLE_A in caplog.text and "evaluation failed" in caplog.text
    ctx = _ctx()
    assert first_allowed(TableAuthorizer({ROLE_A: doubtful}), ctx, "airflow:X", [ROLE_A], {}) is None
    assert ctx.resource == ROLE_A and ctx.policy_errors == ("evaluation failed: X",)


def test_first_allowed_refuses_an_unauthenticated_request_without_asking() -> None:
    authorizer = TableAuthorizer({ROLE_A: ALLOW})
    with pytest.raises(AccessDeniedError):
        first_allowed(authorizer, _ctx(None), "airflow:X", [ROLE_A], {})
    assert authorizer.asked == []


@pytest.mark.parametrize(
    ("granted", "expected"),
    [
        (["Viewer", "Admin"], "Admin"),
        (["Public", "User"], "User"),
        (["Viewer", "Op", "User"], "Op"),
        (["Viewer"], "Viewer"),
        (["Public"], "Public"),
        ([], None),
    ],
)
def test_first_allowed_over_the_role_arns_is_the_most_privileged_role_granted(
    granted: list[str], expected: str | None
) -> None:
    """The InvokeRestApi/CreateWebLoginToken rule, with the real policy engine."""
    arns = role_arns("us-east-1", "123456789012", "env")
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": arn}
                for arn in arns
                if role_of(arn) in granted
            ]
            or [{"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": "*"}],
        },
        name="roles",
    )
    ctx = _ctx()
    chosen = first_allowed(IamAuthorizer(lambda principal: [policy]), ctx, "airflow:InvokeRestApi", arns, {})
    assert (None if chosen is None else role_of(chosen)) == expected
    assert ctx.decision == ("Allow" if expected else "ImplicitDeny")
