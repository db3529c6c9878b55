"""The execution role inside tasks: ExecutionRoleArn's credentials, served as ECS serves a container's.

Every Airflow process of an environment gets ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (a loopback
URL on openmwaa's endpoint) and ``AWS_CONTAINER_AUTHORIZATION_TOKEN`` (derived from the
environment's own secret). botocore's container provider finds them, fetches the role's
temporary credentials and refreshes them before they expire, so ``boto3`` in a task needs no
configuration; ``AWS_ENDPOINT_URL_STS`` and ``AWS_ENDPOINT_URL_MWAA`` send its STS and MWAA calls
to openmwaa, where the role's policies authorize them.

The role is assumed the way MWAA assumes it, by the service: its trust policy must let
``airflow.amazonaws.com`` or ``airflow-env.amazonaws.com`` perform ``sts:AssumeRole`` (conditions
see ``aws:SourceAccount`` and ``aws:SourceArn``, the environment's ARN). A role that is not in
openmwaa's IAM, or does not trust the service, gives tasks no credentials, and the log says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from openmwaa.auth.identities import IdentityStore
from openmwaa.auth.sts_sessions import StsSessionStore
from openmwaa.errors import AccessDeniedError
from openmwaa.iam import evaluate_service_trust
from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.store.environments import EnvironmentRecord

log = logging.getLogger(__name__)

#: The service principals MWAA's guide puts in an execution role's trust policy.
SERVICE_PRINCIPALS: Final = ("airflow.amazonaws.com", "airflow-env.amazonaws.com")
#: The session name MWAA gives the execution role's sessions.
SESSION_NAME: Final = "AmazonMWAA-airflow"
#: Served under this path of the API endpoint, then the environment's name.
PATH_PREFIX: Final = "/_openmwaa/container-credentials/"
SESSION_SECONDS: Final = 3600
#: A cached session is handed out while it has at least this long to live (botocore refreshes
#: credentials 15 minutes before they expire; a fresh fetch must not get ones about to).
REFRESH_MARGIN: Final = 1200.0
_TOKEN_LABEL: Final = b"openmwaa container credentials v1"


def credentials_token(secrets: EnvironmentSecrets) -> str:
    """The bearer token an environment's processes present: unique to that environment instance."""
    return hmac.new(secrets.token_secret.encode(), _TOKEN_LABEL, hashlib.sha256).hexdigest()


def task_environment(secrets: EnvironmentSecrets, *, name: str, api_url: str, region: str) -> dict[str, str]:
    """What an environment's processes need to act as its execution role through openmwaa.

    With ``AIRFLOW_ENV_NAME``, which MWAA sets too, a task can name its own environment.
    """
    return {
        "AIRFLOW_ENV_NAME": name,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{api_url}{PATH_PREFIX}{name}",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": credentials_token(secrets),
        "AWS_ENDPOINT_URL_STS": api_url,
        "AWS_ENDPOINT_URL_MWAA": api_url,
        # botocore would prefix MWAA's host with api. or env., which loopback does not resolve.
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


@dataclass(frozen=True)
class RoleCredentials:
    role_arn: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    token: str = field(repr=False)
    expires_at: float

    def as_container_response(self) -> dict[str, Any]:
        """The JSON the ECS credentials endpoint answers with (what botocore reads)."""
        expiration = dt.datetime.fromtimestamp(int(self.expires_at), tz=dt.timezone.utc)
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "Token": self.token,
            "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": self.role_arn,
        }


class ExecutionRoleService:
    def __init__(
        self,
        identities: IdentityStore,
        sessions: StsSessionStore,
        *,
        account_id: str,
        clock: Callable[[], float],
    ) -> None:
        self._identities = identities
        self._sessions = sessions
        self._account_id = account_id
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], RoleCredentials] = {}
        self._said: dict[str, str] = {}

    def check_token(self, record: EnvironmentRecord, presented: str) -> bool:
        expected = credentials_token(EnvironmentSecrets(**record.secrets))
        return hmac.compare_digest(expected.encode(), presented.encode("utf-8", errors="replace"))

    def credentials(self, record: EnvironmentRecord) -> RoleCredentials:
        """Temporary credentials of the environment's execution role (AccessDeniedError: why not)."""
        role_arn = str(record.config.get("ExecutionRoleArn", ""))
        now = self._clock()
        with self._lock:
            cached = self._cache.get((str(record.key), role_arn))
            if cached is not None and cached.expires_at - now > REFRESH_MARGIN:
                return cached
        try:
            issued = self._assume(record, role_arn, now)
        except AccessDeniedError as exc:
            self._tell(str(record.key), exc.message)
            raise
        with self._lock:
            self._cache[(str(record.key), role_arn)] = issued
            self._said.pop(str(record.key), None)
        return issued

    def _assume(self, record: EnvironmentRecord, role_arn: str, now: float) -> RoleCredentials:
        role = self._identities.role_by_arn(role_arn)
        if role is None:
            raise AccessDeniedError(
                f"The execution role {role_arn} is not a role in openmwaa's IAM: "
                "tasks get no AWS credentials."
            )
        context: Mapping[str, str] = {"aws:SourceAccount": self._account_id, "aws:SourceArn": record.arn}
        decision = evaluate_service_trust(role.trust_policy, services=SERVICE_PRINCIPALS, context=context)
        if not decision.allowed:
            raise AccessDeniedError(
                f"The trust policy of {role_arn} does not let airflow.amazonaws.com or "
                "airflow-env.amazonaws.com assume it: tasks get no AWS credentials."
                + (f" ({'; '.join(decision.errors)})" if decision.errors else "")
            )
        issued = self._sessions.issue(
            role_name=role.name,
            session_name=SESSION_NAME,
            source_arn=record.arn,
            duration=SESSION_SECONDS,
            now=now,
        )
        return RoleCredentials(
            role_arn=role_arn,
            access_key_id=issued.session.access_key_id,
            secret_access_key=issued.session.secret_access_key,
            token=issued.session_token,
            expires_at=issued.session.expires_at,
        )

    def _tell(self, key: str, reason: str) -> None:
        """Log why an environment's tasks get no credentials, once per reason."""
        with self._lock:
            if self._said.get(key) == reason:
                return
            self._said[key] = reason
        log.warning("environment %s: %s", key, reason)
