"""The dashboard's view: filtered per environment ARN by the policy engine, across accounts and regions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from openmwaa.iam import Policy, parse_policy
from openmwaa.principal import Principal
from openmwaa.services.authorization import IamAuthorizer
from openmwaa.services.dashboard import DashboardService
from openmwaa.services.dashboard_data import DagData, SnapshotCache
from openmwaa.store.audit import AuditEntry
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord

pytestmark = pytest.mark.anyio

HOME = ("111111111111", "us-east-1")
OTHER = ("222222222222", "eu-west-1")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def env(
    name: str, status: str = "AVAILABLE", where: tuple[str, str] = HOME, **tags: str
) -> EnvironmentRecord:
    account, region = where
    return EnvironmentRecord(
        key=EnvironmentKey(account, region, name),
        arn=f"arn:aws:airflow:{region}:{account}:environment/{name}",
        status=status,
        created_at=0.0,
        config={"AirflowVersion": "3.3.1"},
        previous_config=None,
        last_update={"Error": {"ErrorMessage": "boom"}} if status.endswith("FAILED") else None,
        tags=tags,
        secrets={},
    )


def principal(name: str) -> Principal:
    return Principal(
        arn=f"arn:aws:iam::{HOME[0]}:user/{name}",
        account_id=HOME[0],
        kind="user",
        user_id=f"AIDA{name.upper()}",
        name=name,
        session_name=None,
        access_key_id=f"AKIA{name.upper()}",
    )


POLICIES: dict[str, list[dict[str, Any]]] = {
    "admin": [{"Effect": "Allow", "Action": "airflow:*", "Resource": "*"}],
    "watcher": [{"Effect": "Allow", "Action": "airflow:GetEnvironment", "Resource": "*"}],
    "team": [
        {
            "Effect": "Allow",
            "Action": "airflow:GetEnvironment",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/team": "data"}},
        },
        {
            "Effect": "Allow",
            "Action": "airflow:InvokeRestApi",
            "Resource": "arn:aws:airflow:*:*:role/*/Viewer",
        },
    ],
    "abroad": [
        {
            "Effect": "Allow",
            "Action": ["airflow:GetEnvironment", "airflow:InvokeRestApi"],
            "Resource": [
                "arn:aws:airflow:eu-west-1:222222222222:environment/*",
                "arn:aws:airflow:eu-west-1:222222222222:role/*",
            ],
        },
    ],
    "denied": [
        {"Effect": "Allow", "Action": "airflow:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "airflow:GetEnvironment",
            "Resource": "arn:aws:airflow:*:*:environment/prod",
        },
    ],
}


def policies_for(who: Principal) -> Sequence[Policy]:
    return [parse_policy({"Version": "2012-10-17", "Statement": POLICIES[who.name]}, name="inline")]


class Audit:
    def __init__(self, entries: list[AuditEntry]) -> None:
        self.entries = entries

    def query(
        self, *, since: float | None = None, limit: int = 1000, newest_first: bool = False
    ) -> Iterable[tuple[int, AuditEntry]]:
        return list(enumerate(self.entries))[:limit]


def entry(who: str, resource: str, decision: str = "Allow") -> AuditEntry:
    return AuditEntry(
        time=1.0,
        request_id="r",
        principal_arn=principal(who).arn,
        source_ip="127.0.0.1",
        action="airflow:GetEnvironment",
        resource=resource,
        decision=decision,
        deciding_statement=None,
        status=200,
        error_code=None,
    )


RECORDS = [
    env("prod", team="data"),
    env("staging", team="web"),
    env("broken", "CREATE_FAILED", team="data"),
    env("abroad-env", where=OTHER),
]


def service(fetched: list[str] | None = None) -> DashboardService:
    async def fetch(record: EnvironmentRecord) -> DagData:
        if fetched is not None:
            fetched.append(record.name)
        return DagData(
            fetched_at=0.0,
            health={"scheduler": "healthy"},
            runs_by_state={"queued": 0, "running": 0, "success": 5, "failed": 1},
            failing_dags=({"dagId": "etl", "failedRuns": 1, "lastRunId": "r1", "lastFailure": "t"},),
        )

    audit = Audit(
        [
            entry("watcher", RECORDS[0].arn, "ImplicitDeny"),
            entry("admin", "arn:aws:airflow:us-east-1:111111111111:role/prod/Admin"),
            entry("admin", "arn:aws:airflow:us-east-1:111111111111:environment/production"),
        ]
    )
    return DashboardService(
        records=lambda: RECORDS,
        authorizer=IamAuthorizer(policies_for),
        cache=SnapshotCache(fetch),
        web_servers=lambda key: 2,
        audit=audit,
        clock=lambda: 10.0,
    )


def no_conditions(tags: Mapping[str, str]) -> Mapping[str, Any]:
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


async def view(who: str, fetched: list[str] | None = None) -> dict[str, dict[str, Any]]:
    state = await service(fetched).view(principal(who), no_conditions)
    assert state["viewer"] == principal(who).arn
    return {e["name"]: e for e in state["environments"]}


async def test_an_admin_sees_every_environment_in_every_account_and_region() -> None:
    fetched: list[str] = []
    envs = await view("admin", fetched)
    assert set(envs) == {"prod", "staging", "broken", "abroad-env"}
    assert envs["abroad-env"]["accountId"] == "222222222222" and envs["abroad-env"]["region"] == "eu-west-1"
    prod = envs["prod"]
    assert prod["runsByState"]["failed"] == 1 and prod["webServers"] == 2 and prod["workers"] == 1
    assert prod["failingDags"][0]["url"].startswith("/dashboard/airflow?environment=arn%3Aaws")
    # Only serving environments are read from Airflow; a failed one shows its error instead.
    assert sorted(fetched) == ["abroad-env", "prod", "staging"]
    assert envs["broken"]["lastError"] == "boom" and envs["broken"]["webServers"] == 0
    # An environment admin sees everyone's decisions about it (not those of "production").
    assert [a["principal"] for a in prod["audit"]] == [principal("watcher").arn, principal("admin").arn]


async def test_get_environment_alone_shows_status_but_no_dag_data_links_or_others_audit() -> None:
    envs = await view("watcher")
    assert set(envs) == {"prod", "staging", "broken", "abroad-env"}
    prod = envs["prod"]
    assert prod["dagDataVisible"] is False and "runsByState" not in prod and "failingDags" not in prod
    assert prod["airflowUrl"] is None and prod["health"] == {"scheduler": "healthy"}
    assert [a["principal"] for a in prod["audit"]] == [principal("watcher").arn]


async def test_conditions_and_role_scoped_grants_are_evaluated_per_environment() -> None:
    envs = await view("team")
    assert set(envs) == {"prod", "broken"}  # tagged team=data
    assert envs["prod"]["dagDataVisible"] is True and envs["prod"]["runsByState"]["success"] == 5
    # InvokeRestApi on the Viewer role only: DAG data, but no web login and only its own audit.
    assert envs["prod"]["airflowUrl"] is None and envs["prod"]["failingDags"][0]["url"] is None
    assert envs["prod"]["audit"] == []


async def test_grants_in_another_account_and_region_and_explicit_denies() -> None:
    assert set(await view("abroad")) == {"abroad-env"}
    assert set(await view("denied")) == {"staging", "broken", "abroad-env"}
