"""Runs every policy evaluation case in tests/data/iam/*.yaml.

Each case gives the policies (``statements`` as shorthand for one policy named ``p``,
``policies`` for several, ``document`` for a raw document, ``trust`` for a role trust
policy), an optional ``request``, and ``expect``: either ``effect`` plus the ``deciding``
statements (``Sid`` means ``p/Sid``) and optionally an ``error`` substring, or
``parse_error`` (a substring of the PolicyError message).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from openmwaa.iam import (
    AuthzRequest,
    Decision,
    Policy,
    PolicyError,
    PolicyIndex,
    evaluate,
    evaluate_indexed,
    evaluate_trust,
    parse_policy,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "iam"
DEFAULT_ACTION = "airflow:GetEnvironment"
DEFAULT_RESOURCE = "arn:aws:airflow:us-east-1:111122223333:environment/prod"
DEFAULT_PRINCIPAL = "arn:aws:iam::111122223333:user/alice"
DEFAULT_ACCOUNT = "111122223333"


def _load_cases() -> list[Any]:
    params = []
    for path in sorted(DATA.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text())["cases"]:
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


CASES = _load_cases()


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 60


def _policies(case: dict[str, Any]) -> list[Policy]:
    if "statements" in case:
        return [parse_policy({"Version": "2012-10-17", "Statement": case["statements"]}, name="p")]
    if "document" in case:
        return [parse_policy(case["document"], name="p")]
    return [parse_policy(p["document"], name=p["name"]) for p in case["policies"]]


def _check(decision: Decision, expect: dict[str, Any]) -> None:
    assert decision.effect == expect["effect"]
    wanted = [ref if "/" in ref else f"p/{ref}" for ref in expect["deciding"]]
    assert [str(ref) for ref in decision.statements] == wanted
    if "error" in expect:
        assert any(expect["error"] in error for error in decision.errors), decision.errors
        assert not decision.allowed
    else:
        assert decision.errors == ()
        assert decision.allowed == (expect["effect"] == "Allow")


@pytest.mark.parametrize("case", CASES)
def test_case(case: dict[str, Any]) -> None:
    expect = case["expect"]
    request = case.get("request", {})
    if "parse_error" in expect:
        with pytest.raises(PolicyError, match=None) as info:
            if "trust" in case:
                parse_policy(case["trust"], name="trust", kind="trust")
            else:
                _policies(case)
        assert expect["parse_error"] in info.value.message
        return
    if "trust" in case:
        policy = parse_policy(case["trust"], name="p", kind="trust")
        decision = evaluate_trust(
            policy,
            principal_arn=request.get("principal", DEFAULT_PRINCIPAL),
            principal_account=request.get("account", DEFAULT_ACCOUNT),
            action=request.get("action", "sts:AssumeRole"),
            context=request.get("context", {}),
        )
        _check(decision, expect)
        return
    policies = _policies(case)
    authz = AuthzRequest(
        action=request.get("action", DEFAULT_ACTION),
        resource=request.get("resource", DEFAULT_RESOURCE),
        principal_arn=request.get("principal", DEFAULT_PRINCIPAL),
        context=request.get("context", {}),
    )
    _check(evaluate(policies, authz), expect)
    # The index must decide exactly as the linear scan does.
    _check(evaluate_indexed(PolicyIndex.build(policies), authz), expect)
