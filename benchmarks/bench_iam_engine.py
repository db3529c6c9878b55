"""Policy evaluations per second: indexed vs. linear scan, for a small and a large principal.

Run: ``.venv/bin/python benchmarks/bench_iam_engine.py``. Prints one table; nothing is asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from openmwaa.iam import AuthzRequest, Decision, Policy, PolicyIndex, evaluate, evaluate_indexed, parse_policy

ACCOUNT = "111122223333"
PRINCIPAL = f"arn:aws:iam::{ACCOUNT}:user/alice"
ENV = f"arn:aws:airflow:us-east-1:{ACCOUNT}:environment/prod"
CONTEXT = {
    "aws:SourceIp": "10.1.2.3",
    "aws:SecureTransport": "true",
    "aws:CurrentTime": "2025-01-01T00:00:00Z",
    "aws:username": "alice",
    "aws:PrincipalArn": PRINCIPAL,
}


def small_policy() -> Policy:
    """A typical five-statement principal: reads, its own environments, a network guard."""
    return parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Read",
                    "Effect": "Allow",
                    "Action": ["airflow:Get*", "airflow:List*"],
                    "Resource": "*",
                },
                {
                    "Sid": "Own",
                    "Effect": "Allow",
                    "Action": "airflow:UpdateEnvironment",
                    "Resource": f"arn:aws:airflow:*:{ACCOUNT}:environment/${{aws:username}}-*",
                },
                {"Sid": "Cli", "Effect": "Allow", "Action": "airflow:CreateCliToken", "Resource": ENV},
                {
                    "Sid": "Corp",
                    "Effect": "Deny",
                    "Action": "airflow:*",
                    "Resource": "*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
                },
                {
                    "Sid": "Tls",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        },
        name="small",
    )


def large_policies() -> list[Policy]:
    """1,000 statements over many services and actions, plus the five above."""
    policies = []
    for chunk in range(5):
        statements: list[dict[str, Any]] = [
            {
                "Sid": f"S{chunk}x{i}",
                "Effect": "Allow",
                "Action": f"svc{i % 40}:Action{chunk}x{i}",
                "Resource": f"arn:aws:svc{i % 40}:us-east-1:{ACCOUNT}:thing/{i}/*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": f"team{i}"}},
            }
            for i in range(199)
        ]
        policies.append(parse_policy({"Version": "2012-10-17", "Statement": statements}, name=f"bulk{chunk}"))
    return [*policies, small_policy()]


def rate(fn: Callable[[], Decision], seconds: float = 0.5) -> float:
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(200):
            fn()
        count += 200
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def main() -> None:
    request = AuthzRequest("airflow:CreateCliToken", ENV, PRINCIPAL, CONTEXT)
    rows = []
    for label, policies in (("5 statements", [small_policy()]), ("1,000 statements", large_policies())):
        index = PolicyIndex.build(policies)
        assert evaluate(policies, request) == evaluate_indexed(index, request)
        assert evaluate(policies, request).allowed
        linear = rate(partial(evaluate, policies, request))
        indexed = rate(partial(evaluate_indexed, index, request))
        count = sum(len(p.statements) for p in policies)
        rows.append((label, count, indexed, linear, indexed / linear, 1e6 / indexed))
    header = ("principal", "statements", "indexed eval/s", "linear eval/s", "ratio", "µs/eval")
    print(f"{header[0]:<18}{header[1]:>11}{header[2]:>16}{header[3]:>15}{header[4]:>8}{header[5]:>9}")
    for label, count, indexed, linear, ratio, micros in rows:
        print(f"{label:<18}{count:>11}{indexed:>16,.0f}{linear:>15,.0f}{ratio:>7.1f}x{micros:>9.1f}")


if __name__ == "__main__":
    main()
