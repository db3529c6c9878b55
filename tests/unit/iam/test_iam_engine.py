from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from openmwaa.iam import (
    AuthzRequest,
    Decision,
    PolicyError,
    PolicyIndex,
    allowed_resources,
    denial_message,
    evaluate,
    evaluate_service_trust,
    evaluate_trust,
    parse_policy,
    simulate,
)
from openmwaa.iam.policy import MAX_DOCUMENT_CHARS, MAX_STATEMENTS, Policy

ALICE = "arn:aws:iam::111122223333:user/alice"
ENV = "arn:aws:airflow:us-east-1:111122223333:environment/prod"
ROLES = [
    f"arn:aws:airflow:us-east-1:111122223333:role/prod/{r}"
    for r in ("Admin", "Op", "User", "Viewer", "Public")
]


def _policy(*statements: dict[str, Any], name: str = "p") -> Any:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, name=name)


def test_allowed_resources_picks_the_allowed_airflow_roles() -> None:
    policy = _policy(
        {"Effect": "Allow", "Action": "airflow:InvokeRestApi", "Resource": "arn:aws:airflow:*:*:role/prod/*"},
        {
            "Effect": "Deny",
            "Action": "airflow:InvokeRestApi",
            "Resource": "arn:aws:airflow:*:*:role/prod/Admin",
        },
    )
    for policies in ([policy], PolicyIndex.build([policy])):
        assert allowed_resources(policies, "airflow:InvokeRestApi", ROLES, ALICE, {}) == ROLES[1:]


def test_index_decides_like_the_linear_scan_for_many_statements() -> None:
    statements: list[dict[str, Any]] = [
        {"Sid": f"S{i}", "Effect": "Allow", "Action": f"svc{i % 7}:Action{i}", "Resource": "*"}
        for i in range(300)
    ]
    statements.append({"Sid": "Wild", "Effect": "Allow", "Action": "svc3:Get*", "Resource": "*"})
    statements.append({"Sid": "NotAct", "Effect": "Deny", "NotAction": "svc1:*", "Resource": ENV})
    policy = _policy(*statements)
    index = PolicyIndex.build([policy])
    actions = [f"svc{i % 7}:Action{i}" for i in range(0, 300, 13)] + [
        "svc3:GetThing",
        "svc1:Action1",
        "zzz:Nope",
    ]
    for action in actions:
        for resource in (ENV, "*"):
            request = AuthzRequest(action, resource, ALICE, {})
            assert evaluate(index, request) == evaluate([policy], request), (action, resource)
    # Statements about other actions are not candidates at all.
    assert len(index.candidates("svc0:action0", "svc0")) == 2  # S0 plus the NotAction statement


def test_identity_evaluation_rejects_trust_policies_with_an_error() -> None:
    trust = parse_policy(
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "*"}},
        name="trust",
        kind="trust",
    )
    request = AuthzRequest("airflow:GetEnvironment", ENV, ALICE, {})
    for policies in ([trust], PolicyIndex.build([trust])):
        decision = evaluate(policies, request)
        assert not decision.allowed
        assert decision.errors


def test_trust_evaluation_rejects_identity_policies() -> None:
    identity = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    decision = evaluate_trust(identity, principal_arn=ALICE, principal_account="111122223333")
    assert not decision.allowed
    assert decision.errors


def test_an_error_during_evaluation_denies() -> None:
    policy = _policy(
        {
            "Sid": "A",
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {"StringEquals": {"a:b": "c"}},
        }
    )

    class Broken(dict[str, str]):
        def items(self) -> Any:
            raise RuntimeError("boom")

    decision = evaluate([policy], AuthzRequest("airflow:GetEnvironment", ENV, ALICE, Broken()))
    assert decision.effect == "ImplicitDeny"
    assert "boom" in decision.errors[0]
    assert not Decision("Allow", errors=("x",)).allowed


def test_denial_messages_use_aws_wording() -> None:
    implicit = Decision("ImplicitDeny")
    explicit = Decision("ExplicitDeny")
    assert denial_message(ALICE, "airflow:GetEnvironment", ENV, implicit) == (
        f"User: {ALICE} is not authorized to perform: airflow:GetEnvironment on resource: {ENV} "
        "because no identity-based policy allows the airflow:GetEnvironment action"
    )
    assert denial_message(ALICE, "airflow:GetEnvironment", ENV, explicit) == (
        f"User: {ALICE} is not authorized to perform: airflow:GetEnvironment on resource: {ENV} "
        "with an explicit deny in an identity-based policy"
    )
    with pytest.raises(ValueError, match="deny decision"):
        denial_message(ALICE, "airflow:GetEnvironment", ENV, Decision("Allow"))


def test_simulation_renders_decision_and_deciding_statement() -> None:
    policy = _policy(
        {"Sid": "All", "Effect": "Allow", "Action": "airflow:*", "Resource": "*"},
        {"Sid": "NoProd", "Effect": "Deny", "Action": "airflow:DeleteEnvironment", "Resource": ENV},
        name="guard",
    )
    denied = simulate([policy], "airflow:DeleteEnvironment", ENV, ALICE, {})
    text = denied.render()
    assert denied.eval_decision == "explicitDeny"
    assert "Decision:   explicitDeny" in text
    assert "Policy 'guard', statement 1 NoProd (Deny)" in text
    assert '"Sid": "NoProd"' in text
    assert "with an explicit deny in an identity-based policy" in text
    allowed = simulate([policy], "airflow:GetEnvironment", ENV, ALICE, {}).render()
    assert "Decision:   allowed" in allowed
    assert '"Sid": "All"' in allowed
    assert "Message:" not in allowed


def test_parser_bounds_and_yaml_friendliness() -> None:
    statement = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    with pytest.raises(PolicyError, match="more than"):
        parse_policy({"Version": "2012-10-17", "Statement": [statement] * (MAX_STATEMENTS + 1)}, name="big")
    with pytest.raises(PolicyError, match="exceeds"):
        parse_policy(" " * (MAX_DOCUMENT_CHARS + 1), name="huge")
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy("[" * 5000 + "]" * 5000, name="deep")
    with pytest.raises(PolicyError, match="Policy name"):
        parse_policy({"Statement": statement}, name="")
    # YAML reads an unquoted 2012-10-17 as a date; that is still the 2012 version.
    policy = parse_policy({"Version": dt.date(2012, 10, 17), "Statement": statement}, name="yaml")
    assert policy.version == "2012-10-17"
    # A missing Version means 2008-10-17, in which ${...} is literal text.
    assert parse_policy({"Statement": statement}, name="old").version == "2008-10-17"


def test_parsed_policy_is_frozen_and_keeps_the_source() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"},
            }
        ),
        name="p",
    )
    assert json.loads(policy.statements[0].source)["Sid"] == "A"
    with pytest.raises(AttributeError):
        policy.name = "other"  # type: ignore[misc]


def test_context_values_that_are_not_strings_are_normalized() -> None:
    policy = _policy(
        {
            "Sid": "Tls",
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": True}},
        },
        {
            "Sid": "N",
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {"NumericEquals": {"x:n": 3}},
        },
    )
    secure: Any = {"aws:SecureTransport": True}
    number: Any = {"x:n": 3}
    assert evaluate([policy], AuthzRequest("a:b", ENV, ALICE, secure)).statements[0].sid == "Tls"
    assert evaluate([policy], AuthzRequest("a:b", ENV, ALICE, number)).statements[0].sid == "N"
    insecure: Any = {"aws:SecureTransport": False}
    assert evaluate([policy], AuthzRequest("a:b", ENV, ALICE, insecure)).effect == "ImplicitDeny"


def _trust(*statements: dict[str, object]) -> Policy:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, name="trust", kind="trust")


MWAA_SERVICES = ("airflow.amazonaws.com", "airflow-env.amazonaws.com")


def test_service_trust_as_mwaa_documents_it() -> None:
    mwaa = _trust(
        {
            "Effect": "Allow",
            "Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    )
    assert evaluate_service_trust(mwaa, services=MWAA_SERVICES).allowed
    assert evaluate_service_trust(mwaa, services=("AIRFLOW-ENV.amazonaws.com",)).allowed
    assert not evaluate_service_trust(mwaa, services=("lambda.amazonaws.com",)).allowed


def test_service_trust_is_not_granted_by_aws_principals_and_deny_wins() -> None:
    account_only = _trust(
        {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"}
    )
    assert not evaluate_service_trust(account_only, services=MWAA_SERVICES).allowed
    denied = _trust(
        {
            "Effect": "Allow",
            "Principal": {"Service": "airflow-env.amazonaws.com"},
            "Action": "sts:AssumeRole",
        },
        {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
    )
    assert evaluate_service_trust(denied, services=MWAA_SERVICES).effect == "ExplicitDeny"


def test_service_trust_conditions_see_the_source() -> None:
    scoped = _trust(
        {
            "Effect": "Allow",
            "Principal": {"Service": "airflow-env.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"}},
        }
    )
    assert evaluate_service_trust(
        scoped, services=MWAA_SERVICES, context={"aws:SourceAccount": "111122223333"}
    ).allowed
    assert not evaluate_service_trust(
        scoped, services=MWAA_SERVICES, context={"aws:SourceAccount": "999"}
    ).allowed
    assert not evaluate_service_trust(scoped, services=MWAA_SERVICES).allowed  # no key: the condition fails


def test_service_trust_refuses_identity_policies() -> None:
    identity = parse_policy({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}, name="i")
    decision = evaluate_service_trust(identity, services=MWAA_SERVICES)
    assert not decision.allowed and decision.errors
