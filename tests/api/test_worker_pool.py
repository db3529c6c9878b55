"""JoinWorkerPool on the in-process server: signed by botocore, authorized by IAM, audited, and
answered with the environment's secrets only over HTTPS or loopback, never into a log."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from openmwaa.app import Services, build_services, create_app
from openmwaa.auth.bootstrap import ensure_bootstrap_admin
from openmwaa.pipeline.asgi import ApiApp
from openmwaa.runtime.secrets import EnvironmentSecrets
from openmwaa.services.celery_queue import queue_name
from openmwaa.store.audit import AuditEntry
from openmwaa.store.environments import EnvironmentKey, EnvironmentRecord
from openmwaa.webserver.tls import ensure_local_tls
from openmwaa.wire.worker_pool import WorkerPoolGrant
from openmwaa.worker.join import Endpoint, JoinRefusedError, join_pool
from tests.api.conftest import ACCOUNT, ENV_ARN, REGION, ApiServer, api_settings, free_port

POOL_ENV = "pool-env"


def _allow(action: str, resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    }


USERS = {
    "joiner": _allow("openmwaa:JoinWorkerPool", ENV_ARN + "*"),
    # Every MWAA action: JoinWorkerPool is not one of them.
    "mwaa-admin": _allow("airflow:*", "*"),
    "other-env-joiner": _allow("openmwaa:JoinWorkerPool", ENV_ARN + "some-other-env"),
}


@dataclass
class PoolServer:
    services: Services
    app: ApiApp
    http_url: str
    https_url: str
    ca_file: Path
    keys: dict[str, tuple[str, str]]
    secrets: EnvironmentSecrets

    def credentials(self, user: str) -> Credentials:
        return Credentials(*self.keys[user])

    def audited(self, request_id: str) -> AuditEntry:
        self.services.audit.flush()
        for _, entry in self.services.audit.query(since=0, limit=100_000):
            if entry.request_id == request_id:
                return entry
        raise AssertionError(f"request {request_id} is not in the audit trail")

    def last_audited(self, principal_suffix: str) -> AuditEntry:
        self.services.audit.flush()
        entries = [e for _, e in self.services.audit.query(since=0, limit=100_000)]
        return [e for e in entries if (e.principal_arn or "").endswith(principal_suffix)][-1]


def _serve(app: ApiApp, port: int, **ssl: Any) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **ssl)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoolServer]:
    # Distributed mode on servers of its own (never contacted: no Airflow runs here).
    settings = api_settings(
        tmp_path_factory.mktemp("pool-data"),
        executor="celery",
        airflow_database_url="postgresql://airflow:pw@127.0.0.1:5432/",
        celery_broker_url="redis://:broker-pw@127.0.0.1:6379/0",
    )
    users = []
    keys: dict[str, tuple[str, str]] = {}
    for index, (name, policy) in enumerate(USERS.items()):
        keys[name] = (f"AKIAPOOLTESTUSER{index:04d}", f"pool-test-secret-{name}-{index:04d}")
        users.append(
            {
                "name": name,
                "access_keys": [{"id": keys[name][0], "secret": keys[name][1]}],
                "policies": [{"name": "inline", "document": policy}],
            }
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.iam_path.write_text(yaml.safe_dump({"users": users}))
    keys["admin"] = ensure_bootstrap_admin(settings)
    (settings.buckets_dir / "src-bucket" / "dags").mkdir(parents=True)
    services = build_services(settings)
    secrets = EnvironmentSecrets.generate()
    for name in (POOL_ENV,):
        services.repository.insert(
            EnvironmentRecord(
                key=EnvironmentKey(ACCOUNT, REGION, name),
                arn=ENV_ARN + name,
                status="AVAILABLE",
                created_at=time.time(),
                config={
                    "AirflowVersion": "3.3.1",
                    "SourceBucketArn": "arn:aws:s3:::src-bucket",
                    "DagS3Path": "dags",
                    "RequirementsS3Path": "requirements.txt",
                    "AirflowConfigurationOptions": {"core.default_task_retries": "2"},
                },
                previous_config=None,
                last_update=None,
                tags={},
                secrets=dataclasses.asdict(secrets),
            )
        )
    services.audit.start()
    app = create_app(settings, services)
    tls = ensure_local_tls(settings.data_dir)
    http_port, https_port = free_port(), free_port()
    plain = _serve(app, http_port)
    secure = _serve(
        create_app(settings, services),
        https_port,
        ssl_certfile=str(tls.certfile),
        ssl_keyfile=str(tls.keyfile),
    )
    assert tls.ca_file is not None
    try:
        yield PoolServer(
            services,
            app,
            f"http://127.0.0.1:{http_port}",
            f"https://127.0.0.1:{https_port}",
            tls.ca_file,
            keys,
            secrets,
        )
    finally:
        for server, thread in (plain, secure):
            server.should_exit = True
            thread.join(timeout=10)
        services.shutdown()


def _join(pool: PoolServer, user: str, environment: str = POOL_ENV) -> WorkerPoolGrant:
    endpoint = Endpoint(pool.https_url, str(pool.ca_file))
    return join_pool(
        endpoint, environment, credentials=pool.credentials(user), region=REGION, worker_name="remote-1"
    )


def test_a_worker_joins_over_https(pool: PoolServer) -> None:
    grant = _join(pool, "joiner")
    record = pool.services.environments.get(POOL_ENV)
    assert (grant.name, grant.queue, grant.airflow_version) == (POOL_ENV, queue_name(record), "3.3.1")
    assert grant.execution_api_path == "/_openmwaa/execution/pool-env/"
    assert (grant.sources.bucket, grant.sources.dags_prefix) == ("src-bucket", "dags/")
    assert grant.sources.requirements is not None and grant.sources.requirements.key == "requirements.txt"
    variables = grant.airflow_variables
    assert variables["AIRFLOW__CORE__FERNET_KEY"] == pool.secrets.fernet_key
    assert variables["AIRFLOW__API_AUTH__JWT_SECRET"] == pool.secrets.jwt_secret
    assert variables["AIRFLOW__CORE__DEFAULT_TASK_RETRIES"] == "2"
    assert variables["AIRFLOW_ENV_NAME"] == POOL_ENV
    # The Celery side, as the environment's own workers have it.
    assert variables["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert variables["AIRFLOW__CELERY__BROKER_URL"] == "redis://:broker-pw@127.0.0.1:6379/0"
    assert variables["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == grant.queue
    assert variables["AIRFLOW__CELERY__WORKER_CONCURRENCY"] == "5"  # mw1.small
    assert variables["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:pw@")
    # Nothing of openmwaa's machine: no path of its data directory, no openmwaa token secret.
    data_dir = str(pool.services.settings.data_dir.resolve())
    assert not [k for k, v in variables.items() if data_dir in v]
    assert "OPENMWAA_TOKEN_SECRET" not in variables and "AIRFLOW_HOME" not in variables


def test_the_join_is_audited_and_no_secret_is_logged(
    pool: PoolServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _join(pool, "joiner")
    entry = pool.last_audited("user/joiner")
    assert (entry.action, entry.resource, entry.decision, entry.status) == (
        "openmwaa:JoinWorkerPool",
        ENV_ARN + POOL_ENV,
        "Allow",
        200,
    )
    logged = caplog.text + repr(entry)
    for secret in dataclasses.asdict(pool.secrets).values():
        assert secret not in logged
    assert "remote-1" in caplog.text  # the worker's name is in the server's log


@pytest.mark.parametrize("user", ["mwaa-admin", "other-env-joiner"])
def test_a_user_without_the_action_is_denied(pool: PoolServer, user: str) -> None:
    with pytest.raises(JoinRefusedError) as refused:
        _join(pool, user)
    assert refused.value.remote_code == "AccessDeniedException"
    assert "openmwaa:JoinWorkerPool" in refused.value.message
    entry = pool.last_audited(f"user/{user}")
    assert (entry.action, entry.decision, entry.status) == ("openmwaa:JoinWorkerPool", "ImplicitDeny", 403)


def test_without_distributed_mode_there_is_no_pool(api: ApiServer) -> None:
    """The shared in-process server runs the LocalExecutor."""
    with pytest.raises(JoinRefusedError) as refused:
        join_pool(
            Endpoint(api.endpoint_url), "avail", credentials=Credentials(*api.keys["admin"]), region=REGION
        )
    assert refused.value.remote_code == "ValidationException"
    assert "CeleryExecutor" in refused.value.message


def test_an_unknown_environment_is_not_found(pool: PoolServer) -> None:
    with pytest.raises(JoinRefusedError) as refused:
        _join(pool, "joiner", "no-such-env")
    assert refused.value.remote_code == "ResourceNotFoundException"


def test_loopback_may_join_over_plain_http(pool: PoolServer) -> None:
    grant = join_pool(
        Endpoint(pool.http_url), POOL_ENV, credentials=pool.credentials("joiner"), region=REGION
    )
    assert grant.name == POOL_ENV


def _signed(url: str, credentials: Credentials, service: str = "openmwaa") -> tuple[str, dict[str, str]]:
    request = AWSRequest(method="POST", url=url, data=b"{}", headers={"Content-Type": "application/json"})
    SigV4Auth(credentials, service, REGION).add_auth(request)
    return url, dict(request.headers.items())


def _from_another_machine(pool: PoolServer, scheme: str, user: str = "joiner") -> httpx.Response:
    """A signed join as the ASGI app sees one from 192.0.2.9 (a documentation address)."""
    url, headers = _signed(
        f"{scheme}://openmwaa.example/_openmwaa/worker-pool/{POOL_ENV}", pool.credentials(user)
    )

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=pool.app, client=("192.0.2.9", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post(url, content=b"{}", headers=headers)

    return asyncio.run(send())


def test_plain_http_from_another_machine_is_refused(pool: PoolServer) -> None:
    response = _from_another_machine(pool, "http")
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert "HTTPS" in response.text
    assert pool.secrets.fernet_key not in response.text
    entry = pool.audited(response.headers["x-amzn-requestid"])
    assert (entry.action, entry.source_ip, entry.status) == ("openmwaa:JoinWorkerPool", "192.0.2.9", 403)


def test_https_from_another_machine_is_served(pool: PoolServer) -> None:
    response = _from_another_machine(pool, "https")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert WorkerPoolGrant.from_json(response.content).name == POOL_ENV


def test_an_unsigned_join_is_refused(pool: PoolServer) -> None:
    response = httpx.post(f"{pool.http_url}/_openmwaa/worker-pool/{POOL_ENV}", content=b"{}")
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"


def test_a_signature_for_another_service_is_refused(pool: PoolServer) -> None:
    url, headers = _signed(
        f"{pool.http_url}/_openmwaa/worker-pool/{POOL_ENV}", pool.credentials("joiner"), "airflow"
    )
    response = httpx.post(url, content=b"{}", headers=headers)
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "InvalidSignatureException"


def test_other_methods_are_refused(pool: PoolServer) -> None:
    client = boto3.client(
        "sts",
        endpoint_url=pool.http_url,
        region_name=REGION,
        aws_access_key_id=pool.keys["joiner"][0],
        aws_secret_access_key=pool.keys["joiner"][1],
        config=Config(retries={"max_attempts": 1}),
    )
    assert client.get_caller_identity()["Arn"].endswith("user/joiner")  # the key itself is fine
    request = AWSRequest(method="GET", url=f"{pool.http_url}/_openmwaa/worker-pool/{POOL_ENV}")
    SigV4Auth(pool.credentials("joiner"), "openmwaa", REGION).add_auth(request)
    response = httpx.get(request.url, headers=dict(request.headers.items()))
    assert response.status_code == 400
