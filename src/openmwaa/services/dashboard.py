"""The dashboard's view: every environment the viewer may see, across the accounts and regions served.

What a viewer sees is decided per environment ARN by the same policy engine as the API:

- the environment (status, component health, web server and worker counts) with
  ``airflow:GetEnvironment`` on ``arn:aws:airflow:<region>:<account>:environment/<name>``;
- its DAG data (runs by state over 24 h, failing DAGs, failed task instances) with
  ``airflow:InvokeRestApi`` on any of its role ARNs (``...:role/<name>/<Role>``), as InvokeRestApi
  would let them read it themselves;
- links into its Airflow UI with ``airflow:CreateWebLoginToken`` on any of its role ARNs (the
  link signs in with the most privileged role allowed, like CreateWebLoginToken);
- its recent audit decisions (requests about that environment or its roles): all callers' for a
  viewer whose policy grants the environment's ``Admin`` role (InvokeRestApi), only the viewer's own
  otherwise: who else called an environment is its administrators' business.

Nothing is shown for an environment the viewer may not GetEnvironment, not even its name.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode

from openmwaa.errors import ResourceNotFoundError, ValidationError
from openmwaa.pipeline.interfaces import Authorizer
from openmwaa.principal import Principal
from openmwaa.runtime.versions import major
from openmwaa.services.dashboard_data import DagData, SnapshotCache
from openmwaa.services.environments import SERVING_STATUSES
from openmwaa.services.invoke import role_arns
from openmwaa.store.audit import AuditEntry
from openmwaa.store.environments import EnvironmentRecord

#: Audit decisions shown per environment, and how far back the dashboard looks for them.
MAX_AUDIT_ENTRIES: Final = 10
AUDIT_WINDOW_SECONDS: Final = 24 * 3600
#: Entries read from the audit trail per refresh, and how often it is read (whatever the viewers).
AUDIT_SCAN: Final = 1000
AUDIT_REFRESH_SECONDS: Final = 2.0

#: The request's condition keys for an environment with these tags.
Conditions = Callable[[Mapping[str, str]], Mapping[str, Any]]


class WebEndpoints(Protocol):
    def ensure(self, record: EnvironmentRecord) -> str:
        """Start the environment's web endpoint if needed; its ``WebServerHostname``."""


class WebTokens(Protocol):
    def issue_web_token(self, *, environment_arn: str, identity: str, role: str) -> str: ...


@dataclass(frozen=True)
class WebLogin:
    """Where the dashboard sends a viewer to sign in to an environment's Airflow UI."""

    endpoints: WebEndpoints
    tokens: WebTokens
    #: ``https`` when the environments' web endpoints serve TLS.
    scheme: str


class AuditSource(Protocol):
    def query(
        self, *, since: float | None = None, limit: int = 1000, newest_first: bool = False
    ) -> Iterable[tuple[int, AuditEntry]]: ...


@dataclass(frozen=True)
class Access:
    """What the viewer may do with one environment."""

    dag_data: bool
    web_login: bool
    all_audit: bool


class DashboardService:
    def __init__(
        self,
        *,
        records: Callable[[], Sequence[EnvironmentRecord]],
        authorizer: Authorizer,
        cache: SnapshotCache,
        web_servers: Callable[[str], int],
        audit: AuditSource,
        clock: Callable[[], float] = time.time,
        web_login: WebLogin | None = None,
        run_blocking: Callable[[Callable[[], list[AuditEntry]]], Any] | None = None,
    ) -> None:
        self._web_login = web_login
        self._records = records
        self._authorizer = authorizer
        self._cache = cache
        self._web_servers = web_servers
        self._audit = audit
        self._clock = clock
        self._run_blocking = run_blocking
        self._audit_read: tuple[float, list[AuditEntry]] = (float("-inf"), [])
        self._audit_lock = asyncio.Lock()

    @property
    def refresh_interval(self) -> float:
        return self._cache.refresh_interval

    def access(
        self, principal: Principal, record: EnvironmentRecord, conditions: Conditions
    ) -> Access | None:
        """None when the viewer may not see the environment at all."""
        context = conditions(record.tags)

        def allows(action: str, resource: str) -> bool:
            return self._authorizer.decide(principal, action, resource, context).allowed

        if not allows("airflow:GetEnvironment", record.arn):
            return None
        roles = role_arns(record.key.region, record.key.account_id, record.name)
        return Access(
            dag_data=any(allows("airflow:InvokeRestApi", arn) for arn in roles),
            web_login=any(allows("airflow:CreateWebLoginToken", arn) for arn in roles),
            all_audit=allows("airflow:InvokeRestApi", roles[0]),
        )

    async def view(self, principal: Principal, conditions: Conditions) -> dict[str, Any]:
        """The dashboard's JSON document for this viewer."""
        records = sorted(self._records(), key=lambda r: (r.key.account_id, r.key.region, r.name))
        self._cache.forget_except(str(r.key) for r in records)
        visible = [
            (record, access)
            for record in records
            if (access := self.access(principal, record, conditions)) is not None
        ]
        snapshots = await asyncio.gather(*(self._snapshot(record, access) for record, access in visible))
        audit = await self._recent_audit()
        return {
            "generatedAt": _iso(self._clock()),
            "viewer": principal.arn,
            "refreshSeconds": self._cache.refresh_interval,
            "environments": [
                self._environment(record, access, data, audit, principal)
                for (record, access), data in zip(visible, snapshots, strict=True)
            ],
        }

    def find(self, environment_arn: str) -> EnvironmentRecord:
        """The environment with this ARN, in any account and region served."""
        record = next((r for r in self._records() if r.arn == environment_arn), None)
        if record is None:
            raise ResourceNotFoundError(f"Environment {environment_arn[:256]} does not exist.")
        return record

    def web_login_url(
        self, record: EnvironmentRecord, principal: Principal, role: str, dag_id: str | None
    ) -> str:
        """A console sign-in URL into the environment's Airflow UI (at the DAG's page, if given) for
        ``principal`` as ``role``: a single-use web login token, as CreateWebLoginToken hands out.

        Blocking (it may start the environment's web endpoint): call it from a worker thread.
        """
        if self._web_login is None:
            raise ValidationError("Airflow UI links are not available on this endpoint.")
        if record.status not in SERVING_STATUSES:
            raise ValidationError(
                f"Environment {record.name} is {record.status}; its Airflow UI is not serving."
            )
        hostname = self._web_login.endpoints.ensure(record)
        token = self._web_login.tokens.issue_web_token(
            environment_arn=record.arn, identity=principal.identity, role=role
        )
        airflow3 = major(str(record.config.get("AirflowVersion", "3"))) >= 3
        prefix = "/pluginsv2/aws_mwaa" if airflow3 else "/aws_mwaa"
        query = {"login": "true"}
        if dag_id:
            query["next"] = f"/dags/{quote(dag_id, safe='')}" + ("" if airflow3 else "/grid")
        return (
            f"{self._web_login.scheme}://{hostname}{prefix}/aws-console-sso?{urlencode(query)}"
            f"#{quote(token, safe='')}"
        )

    async def _snapshot(self, record: EnvironmentRecord, access: Access) -> DagData | None:
        # Component health comes from the same refresh, so serving environments are read even for
        # a viewer who may not see their DAG data.
        if record.status not in SERVING_STATUSES:
            return None
        return await self._cache.get(record)

    def _environment(
        self,
        record: EnvironmentRecord,
        access: Access,
        data: DagData | None,
        audit: Sequence[AuditEntry],
        principal: Principal,
    ) -> dict[str, Any]:
        serving = record.status in SERVING_STATUSES
        error = (record.last_update or {}).get("Error")
        env: dict[str, Any] = {
            "name": record.name,
            "arn": record.arn,
            "accountId": record.key.account_id,
            "region": record.key.region,
            "status": record.status,
            "airflowVersion": record.config.get("AirflowVersion"),
            "lastError": error.get("ErrorMessage") if isinstance(error, Mapping) else None,
            "webServers": self._web_servers(str(record.key)) if serving else 0,
            # One executor per environment (in its scheduler) runs every task while it serves.
            "workers": 1 if serving and data is not None and data.health.get("scheduler") == "healthy" else 0,
            "health": dict(data.health) if data is not None else {},
            "dataAgeSeconds": None if data is None else round(max(0.0, self._clock() - data.fetched_at), 1),
            "dataError": data.error if data is not None else None,
            "dagDataVisible": access.dag_data,
            "airflowUrl": _airflow_link(record.arn) if access.web_login and serving else None,
            "audit": _audit_for(record, audit, principal if not access.all_audit else None),
        }
        if access.dag_data and data is not None and data.error is None:
            link = access.web_login and serving
            env["runsByState"] = dict(data.runs_by_state)
            env["failingDags"] = [
                {**dag, "url": _airflow_link(record.arn, str(dag["dagId"])) if link else None}
                for dag in data.failing_dags
            ]
            env["failedTasks"] = [
                {**task, "url": _airflow_link(record.arn, str(task["dagId"])) if link else None}
                for task in data.failed_tasks
            ]
        return env

    async def _recent_audit(self) -> list[AuditEntry]:
        """The trail's latest decisions, read at most once every AUDIT_REFRESH_SECONDS."""
        async with self._audit_lock:
            read_at, entries = self._audit_read
            now = time.monotonic()
            if now - read_at < AUDIT_REFRESH_SECONDS:
                return entries
            since = self._clock() - AUDIT_WINDOW_SECONDS

            def scan() -> list[AuditEntry]:
                rows = self._audit.query(since=since, limit=AUDIT_SCAN, newest_first=True)
                return [entry for _id, entry in rows if entry.decision is not None]

            entries = await self._run_blocking(scan) if self._run_blocking else scan()
            self._audit_read = (now, entries)
            return entries


def _audit_for(
    record: EnvironmentRecord, entries: Sequence[AuditEntry], only: Principal | None
) -> list[dict[str, Any]]:
    role_prefix = f"arn:aws:airflow:{record.key.region}:{record.key.account_id}:role/{record.name}/"
    shown = []
    for entry in entries:
        resource = entry.resource or ""
        if resource != record.arn and not resource.startswith(role_prefix):
            continue
        if only is not None and entry.principal_arn != only.arn:
            continue
        shown.append(
            {
                "time": _iso(entry.time),
                "principal": entry.principal_arn,
                "action": entry.action,
                "resource": resource,
                "decision": entry.decision,
                "status": entry.status,
            }
        )
        if len(shown) >= MAX_AUDIT_ENTRIES:
            break
    return shown


def _airflow_link(environment_arn: str, dag_id: str | None = None) -> str:
    link = "/dashboard/airflow?environment=" + _quoted(environment_arn)
    return f"{link}&dag={_quoted(dag_id)}" if dag_id else link


@functools.lru_cache(maxsize=4096)
def _quoted(value: str) -> str:
    """Percent-encoded for a query value (memoized: a view links the same ARNs and DAGs many times)."""
    return quote(value, safe="")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
