"""The real openmwaa app, built in process and served by uvicorn in a thread, and boto3 clients for it.

No Airflow runs here: environments the tests need are records written straight into the
repository (enough for every check that comes before Airflow is called).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
import yaml
from botocore import UNSIGNED
from botocore.config import Config

from openmwaa.app import Services, build_services, create_app
from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.auth.credentials import SecretBox
from openmwaa.auth.iam_admin import IdentitiesEditor
from openmwaa.settings import Settings
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord

ACCOUNT = "123456789012"
REGION = "us-east-1"
ADMIN_KEY = "AKIAAPITESTADMIN0001"
ADMIN_SECRET = "api-test-admin-secret-000000000000000000"
ENV_ARN = f"arn:aws:airflow:{REGION}:{ACCOUNT}:environment/"
ROLE_ARN = f"arn:aws:airflow:{REGION}:{ACCOUNT}:role/"


def _policy(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


#: Users of the in-process server: name -> statements of their one inline policy (None: no policy).
USERS: dict[str, list[dict[str, Any]] | None] = {
    "nobody": None,
    "getter": [allow(["airflow:GetEnvironment", "airflow:ListEnvironments"])],
    "denied-get": [allow("airflow:*"), deny("airflow:GetEnvironment")],
    "ip-loopback": [
        allow("airflow:GetEnvironment", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})
    ],
    "ip-elsewhere": [
        allow("airflow:GetEnvironment", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    ],
    "tls-only": [allow("airflow:GetEnvironment", Condition={"Bool": {"aws:SecureTransport": "true"}})],
    "no-plain-http": [
        allow("airflow:*"),
        deny("airflow:*", Condition={"Bool": {"aws:SecureTransport": "false"}}),
    ],
    "team-a": [
        allow("airflow:GetEnvironment", Condition={"StringEquals": {"aws:ResourceTag/team": "a"}}),
    ],
    "tagger": [
        allow(
            ["airflow:CreateEnvironment", "airflow:TagResource"],
            Condition={
                "StringEquals": {"aws:RequestTag/team": "a"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "owner"]},
            },
        )
    ],
    "alice": [allow("airflow:GetEnvironment", ENV_ARN + "${aws:username}-*")],
    "viewer-only": [allow("airflow:InvokeRestApi", ROLE_ARN + "avail/Viewer")],
    "assumer": [allow("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/EnvReader")],
    "metrics-reader": [allow(["cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics"])],
    "not-trusted": [allow("sts:AssumeRole", "*")],
    # A deploy pipeline's user: lists and writes only below dags/ of any bucket.
    "dag-deployer": [
        allow("s3:ListBucket", "arn:aws:s3:::*", Condition={"StringLike": {"s3:prefix": "dags/*"}}),
        allow(["s3:PutObject", "s3:GetObject", "s3:DeleteObject"], "arn:aws:s3:::*/dags/*"),
    ],
}

ROLES: dict[str, dict[str, Any]] = {
    "EnvReader": {
        "trust": _policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/assumer"},
                "Action": "sts:AssumeRole",
            }
        ),
        "policy": _policy(allow(["airflow:GetEnvironment", "airflow:ListEnvironments"])),
    },
    # An environment's execution role, with the trust policy MWAA's guide gives.
    "MwaaExecution": {
        "trust": _policy(
            {
                "Effect": "Allow",
                "Principal": {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ),
        "policy": _policy(allow("airflow:GetEnvironment")),
    },
}

#: Environment records (no Airflow behind them): name -> (status, tags).
ENVIRONMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "avail": ("AVAILABLE", {}),
    "team-a-env": ("AVAILABLE", {"team": "a"}),
    "team-b-env": ("AVAILABLE", {"team": "b"}),
    "alice-env": ("AVAILABLE", {}),
    "bob-env": ("AVAILABLE", {}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ApiServer:
    settings: Settings
    services: Services
    port: int
    keys: dict[str, tuple[str, str]]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(
        self, service: str = "mwaa", user: str | None = "admin", *, region: str = REGION, **kwargs: Any
    ) -> Any:
        """A boto3 client signed as ``user`` (None: unsigned)."""
        config = Config(inject_host_prefix=False, retries={"max_attempts": 1})
        if user is None:
            config = config.merge(Config(signature_version=UNSIGNED))
        elif "aws_access_key_id" not in kwargs:
            key_id, secret = self.keys[user]
            kwargs.update(aws_access_key_id=key_id, aws_secret_access_key=secret)
        return boto3.client(
            service, endpoint_url=self.endpoint_url, region_name=region, config=config, **kwargs
        )

    def editor(self) -> IdentitiesEditor:
        return IdentitiesEditor(
            self.settings.iam_path, account_id=ACCOUNT, box=SecretBox.open(self.settings.data_dir)
        )

    def wait_for_user(self, name: str, timeout: float = 5.0) -> None:
        """Until the running store has reloaded the identities file with ``name`` in it."""
        deadline = time.monotonic() + timeout
        while name not in self.services.identities.identities().users:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not pick up user {name} in {timeout}s")
            time.sleep(0.1)


def _write_identities(settings: Settings) -> dict[str, tuple[str, str]]:
    """The users and roles above, written as one iam.yaml (faster than one edit each), then the admin."""
    keys: dict[str, tuple[str, str]] = {}
    users = []
    for index, (name, statements) in enumerate(USERS.items()):
        key_id, secret = f"AKIAAPITESTUSER{index:05d}", f"api-test-secret-{name}-{index:05d}"
        keys[name] = (key_id, secret)
        users.append(
            {
                "name": name,
                "access_keys": [{"id": key_id, "secret": secret}],
                "policies": []
                if statements is None
                else [{"name": "inline", "document": _policy(*statements)}],
            }
        )
    roles = [
        {
            "name": name,
            "trust_policy": role["trust"],
            "policies": [{"name": "inline", "document": role["policy"]}],
        }
        for name, role in ROLES.items()
    ]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.iam_path.write_text(yaml.safe_dump({"users": users, "roles": roles}, sort_keys=False))
    keys["admin"] = ensure_bootstrap_admin(settings)
    return keys


def _insert_environments(services: Services) -> None:
    now = time.time()
    for name, (status, tags) in ENVIRONMENTS.items():
        services.repository.insert(
            EnvironmentRecord(
                key=EnvironmentKey(ACCOUNT, REGION, name),
                arn=ENV_ARN + name,
                status=status,
                created_at=now,
                config={"AirflowVersion": "3.3.1", "WebserverAccessMode": "PRIVATE_ONLY"},
                previous_config=None,
                last_update=None,
                tags=tags,
                secrets={},
            )
        )


def api_settings(
    data_dir: Path, *, admin_key: str = ADMIN_KEY, admin_secret: str = ADMIN_SECRET, **overrides: Any
) -> Settings:
    """Settings of an in-process API server on a free port, with a bootstrap admin key."""
    return Settings(
        data_dir=data_dir,
        port=free_port(),
        region=REGION,
        account_id=ACCOUNT,
        runtime_dir=data_dir / "runtimes",
        default_environment=False,
        bootstrap_access_key_id=admin_key,
        bootstrap_secret_access_key=admin_secret,
        **overrides,
    )


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    settings = api_settings(tmp_path_factory.mktemp("api-data"))
    port = settings.port
    keys = _write_identities(settings)
    services = build_services(settings)
    _insert_environments(services)
    services.audit.start()
    config = uvicorn.Config(
        create_app(settings, services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the in-process API server did not start")
        time.sleep(0.02)
    try:
        yield ApiServer(settings=settings, services=services, port=port, keys=keys)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.shutdown()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
